"""``python -m nbship_runtime.selftest [ROOT] [--opened FILE]``: start the pipeline and answer its example.

Used by ``nbship check`` for parity: prints the response as JSON on stdout's last line, and before it the
batching probe's evidence (``batching.probe``); on an exception, prints where it
happened in the notebook (from the manifest's cell line ranges) on stderr and exits 1. ``ROOT`` is the rendered
package (default: the current directory). With ``--opened FILE``, the run happens in the notebook's folder (the
current directory) and the files the code opened there are written to FILE as JSON (``observe.py``).
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Any

from .manifest import ManifestError, read_manifest
from .observe import OpenRecorder
from .pipeline import Pipeline, load_pipeline, to_jsonable
from .provenance import CellLocator, notebook_frames

PROBE_KEY = "nbship_batching_probe"  # the line before the answer: the evidence for batching (``batching.probe``)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    opened_file = args[args.index("--opened") + 1] if "--opened" in args else None
    positional = [a for i, a in enumerate(args) if not a.startswith("--") and (i == 0 or args[i - 1] != "--opened")]
    root = Path(positional[0]).resolve() if positional else Path.cwd()
    recorder = None
    if opened_file is not None:
        here = Path.cwd()
        sys.path[:] = [p for p in sys.path if p not in ("", str(here))]  # the notebook's folder is not on the path
        manifest = read_manifest(root)
        recorder = OpenRecorder(here, root / manifest.package)
        recorder.install()
    try:
        return _run(root)
    finally:
        if recorder is not None and opened_file is not None:
            report = recorder.report(CellLocator(root, manifest))
            Path(opened_file).write_text(json.dumps(report, sort_keys=True), encoding="utf-8")


def _probe(pipeline: Pipeline) -> dict[str, Any]:
    """The batching probe's evidence; its failure is only a reason not to batch, never a parity failure."""
    from .batching import probe

    assert pipeline.manifest.example is not None
    try:
        return probe(pipeline, pipeline.manifest.example.request)
    except Exception as e:
        return {"error": f"the probe raised {type(e).__name__}: {e}"}


def _run(root: Path) -> int:
    stage = "start-up (parameters and load cells)"
    try:
        pipeline = load_pipeline(root)
        stage = "the example"
        if pipeline.manifest.example is None:
            raise ManifestError("nbship.json has no example to answer")
        response = pipeline(pipeline.manifest.example.request)
        answer = json.dumps(to_jsonable(response), sort_keys=True)
        print(json.dumps({PROBE_KEY: _probe(pipeline)}, sort_keys=True))
        print(answer)
        return 0
    except Exception as e:  # report any failure of the notebook's code with its notebook location
        where = notebook_frames(read_manifest(root), root, e.__traceback__)
        print(json.dumps({"stage": stage, "error": f"{type(e).__name__}: {e}", "where": where,
                          "traceback": traceback.format_exc()}), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
