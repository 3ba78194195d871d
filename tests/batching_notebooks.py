"""Notebooks for the batching tests: a ``predict`` over rows of a numpy array, batchable or not."""

from __future__ import annotations

from pathlib import Path

from tests.notebooks import code, write_notebook

INDEPENDENT = "return rows[:, 0] * factor"  # each row on its own
ROW_DEPENDENT = "return rows[:, 0] - rows[:, 0].mean()"  # each row against the batch's mean
ONE_ROW = "return np.array([rows[:, 0].sum() * factor])"  # one row whatever the batch


def rows_notebook(folder: Path, body: str, answer: float, *, pause: float = 0.0, config: str = "") -> Path:
    """``predict(rows)`` with ``body``; the example ``{"x": 1.5}`` answers ``{"y": answer}``."""
    if config:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "nbship.yaml").write_text(config, encoding="utf-8")
    return write_notebook(
        folder / "rows.ipynb",
        code("import time\n\nimport numpy as np", "setup"),
        code("factor = 2.0", "load"),
        code('def preprocess(payload):\n    return np.array([[float(payload["x"])]])', "preprocess"),
        code(f"def predict(rows):\n    time.sleep({pause})\n    {body}", "predict"),
        code('def postprocess(output):\n    return {"y": float(output[0])}', "postprocess"),
        code('# nbship: example\nexample = {"x": 1.5}\npostprocess(predict(preprocess(example)))',
             result={"y": answer}),
    )
