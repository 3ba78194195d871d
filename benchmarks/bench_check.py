"""Benchmark of the notebook stage: `nbship --help` and `nbship check --no-verify` on a 300-cell notebook.

Prints medians of N runs (wall time of a fresh process each, as a user sees it) next to the targets of issue 2:
`--help` under 0.3 s, check of 300 cells under 1 s. Run: python benchmarks/bench_check.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.notebooks import code, markdown, write_notebook  # noqa: E402


def big_notebook(path: Path, cells: int = 300) -> Path:
    """A realistic 300-cell notebook: exploration with magics, helpers, and a tagged pipeline."""
    body = [code("import math\nimport json\n%matplotlib inline\n%load_ext autoreload", "setup"),
            code("threshold = 0.5\nscale = 2.0\nlabels = ['no', 'yes']", "parameters")]
    n = 0
    while len(body) < cells - 3:
        n += 1
        body.append(markdown(f"## Step {n}\nLooking at feature {n}."))
        body.append(code(f"values_{n} = [x * {n} for x in range(50)]\nmean_{n} = sum(values_{n}) / len(values_{n})\n"
                         f"%timeit sum(values_{n})\nprint(mean_{n})"))
        body.append(code(f"def feature_{n}(row):\n    '''Feature {n} of a row.'''\n"
                         f"    return math.log1p(abs(row.get('x', 0.0))) * {n} + scale", "setup"))
    body.append(code("def predict(inputs):\n    score = sum(f(inputs) for f in [" +
                     ", ".join(f"feature_{i}" for i in range(1, min(n, 40) + 1)) + "])\n"
                     "    return {'score': score, 'label': labels[int(score > threshold)]}", "predict"))
    body.append(code("example = {'x': 1.0}\npredict(example)", "example"))
    return write_notebook(path, *body[:cells])


def median_seconds(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp:
        notebook = big_notebook(Path(tmp) / "big.ipynb")
        cells = len(__import__("json").loads(notebook.read_text())["cells"])
        baseline = median_seconds([sys.executable, "-c", "pass"], runs)
        help_time = median_seconds([sys.executable, "-m", "nbship", "--help"], runs)
        check_time = median_seconds([sys.executable, "-m", "nbship", "check", "--no-verify", str(notebook)], runs)
    print(f"python startup (no-op)            median {baseline:.3f} s")
    print(f"nbship --help                     median {help_time:.3f} s   target < 0.3 s")
    print(f"nbship check --no-verify {cells} cells median {check_time:.3f} s   target < 1 s")


if __name__ == "__main__":
    main()
