"""Re-execute the corpus notebooks in place, so each example cell has its saved output and the artifacts exist.

Each notebook runs with nbclient in its own folder, as its author ran it. Cells that fail under today's libraries
(an API removed since the book was written, a figure file not shipped) keep their error output and the run goes on:
they are exploration, never exported. Pictures are dropped from untagged cells afterwards to keep the repository
small; the text of every output stays. Files the exploration cells write that the service does not read (figures,
the handson-ml3 ``images/`` folder) are removed.

    .venv/bin/python tests/corpus/execute.py                 # all
    .venv/bin/python tests/corpus/execute.py ch07 lightgbm   # those whose path contains a word
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
PICTURES = ("image/png", "image/jpeg", "image/svg+xml", "application/pdf", "application/vnd.jupyter.widget-view+json")


def notebooks(words: list[str]) -> list[Path]:
    found = sorted(p for p in HERE.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    return [p for p in found if not words or any(w in str(p.relative_to(HERE)) for w in words)]


def is_tagged(cell: Any) -> bool:
    return any(t.startswith("nbship:") for t in cell.get("metadata", {}).get("tags", []))


def execute(path: Path) -> list[int]:
    """Run one notebook in its folder and save it; returns the indexes of the cells that raised."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    client = NotebookClient(
        nb,
        timeout=900,
        kernel_name="python3",
        allow_errors=True,
        record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    failed = [
        index
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and any(o.get("output_type") == "error" for o in cell.get("outputs", []))
    ]
    slim(nb)
    nbformat.write(nb, path)
    return failed


def slim(nb: Any) -> None:
    """Drop pictures and HTML (an estimator's or a table's; the text stays) from the outputs of untagged cells."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.metadata.pop("execution", None)
        if is_tagged(cell):
            continue
        for output in cell.get("outputs", []):
            data = output.get("data")
            if data is None:
                continue
            for kind in PICTURES:
                data.pop(kind, None)
            if "text/plain" in data:
                data.pop("text/html", None)
            if not data:
                data["text/plain"] = "<figure>"


def main(words: list[str]) -> int:
    # fixed hash seed and one BLAS thread: pickles and float sums come out the same on every run
    os.environ["PYTHONHASHSEED"] = "0"
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    for path in notebooks(words):
        failed = execute(path)
        shutil.rmtree(path.parent / "images", ignore_errors=True)
        note = f"cells that raised (exploration, kept as output): {failed}" if failed else "no cell raised"
        print(f"{path.relative_to(HERE)}: {note}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
