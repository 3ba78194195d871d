"""``python -m nbship_runtime.selftest``: start the pipeline in the current directory and answer its example.

Used by ``nbship check`` for parity: prints the response as JSON on stdout; on an exception, prints where it
happened in the notebook (from the manifest's cell line ranges) on stderr and exits 1.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

from .pipeline import load_pipeline, to_jsonable
from .provenance import notebook_frames


def main() -> int:
    root = Path.cwd()
    stage = "start-up (parameters and load cells)"
    try:
        pipeline = load_pipeline(root)
        stage = "the example"
        response = pipeline(pipeline.manifest["example"]["request"])
        print(json.dumps(to_jsonable(response), sort_keys=True))
        return 0
    except Exception as e:  # report any failure of the notebook's code with its notebook location
        manifest = json.loads((root / "nbship.json").read_text(encoding="utf-8"))
        where = notebook_frames(manifest, root, e.__traceback__)
        print(json.dumps({"stage": stage, "error": f"{type(e).__name__}: {e}", "where": where,
                          "traceback": traceback.format_exc()}), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
