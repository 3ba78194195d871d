"""``python -m nbship_runtime.download [ROOT]``: the pod's init container, run from the service's own image.

Downloads and verifies the remote artifacts of ``ROOT/nbship.json`` (default: the working directory, ``/app``)
before the model container starts, logging JSON lines (start, progress every 10 s or 100 MB, retries, done).
The files go under ``$NBSHIP_DOWNLOAD_DIR`` when it is set (the init container's view of the download volume,
whose folders the model container mounts at ``/app/<folder>``), else under ROOT.
Exit 0 when every file is in place with its sha256; exit 1 with one ``download-failed`` line naming the cause.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from .artifacts import ArtifactError, fetch_remote_artifacts
from .logs import configure_logging
from .manifest import read_manifest

log = logging.getLogger("nbship.download")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0]) if args else Path.cwd()
    configure_logging()
    remote = read_manifest(root).remote_artifacts
    try:
        fetched = fetch_remote_artifacts(Path(os.environ.get("NBSHIP_DOWNLOAD_DIR") or root), remote,
                                         attempts=int(os.environ.get("NBSHIP_DOWNLOAD_ATTEMPTS", "5")))
    except ArtifactError as e:
        log.error(f"download failed: {e}", extra={"fields": {"event": "download-failed", "error": str(e)}})
        return 1
    kept = [f.path for f in fetched if not f.downloaded]
    if kept:
        log.info(f"already in place with their sha256: {', '.join(kept)}",
                 extra={"fields": {"event": "download-cached", "paths": kept}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
