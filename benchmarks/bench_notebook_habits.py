"""Benchmark: the cost of issue 12's engine — reading a pickle's globals, and observing the parity run.

- ``scan``: ``pickle_globals`` on a joblib file of a scikit-learn pipeline (``FunctionTransformer`` of a
  ``__main__`` function, a custom ``__main__`` transformer, ``StandardScaler``) plus a float array of ``--mib``
  MiB, written by a process whose ``__main__`` defines them (joblib writes the array's bytes raw between pickle
  frames, which the scan must step over). Printed: the median time and the throughput.
- ``parity``: the parity run of the notebook of ``tests/fixtures/pickled_notebook.py`` (imports scikit-learn,
  unpickles the pipeline, answers the example) in the build context as before, and in the notebook's folder with
  the audit hook that records the files opened. Printed: the median of each and their ratio, same run.

    .venv/bin/python benchmarks/bench_notebook_habits.py [--rounds 5] [--mib 64]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.fixtures.pickled_notebook import DEFINITIONS, TRAIN, notebook  # noqa: E402

BIG = ("import numpy as np\n"
       "joblib.dump({'pipeline': pipeline, 'weights': np.ones(int(sys.argv[1]) * 2**17)}, 'big.joblib')\n")


def median_seconds(run, rounds: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench_scan(folder: Path, mib: int, rounds: int) -> None:
    from nbship.pickles import main_references, pickle_globals

    script = "import sys\n" + DEFINITIONS + TRAIN + BIG
    subprocess.run([sys.executable, "-c", script, str(mib)], cwd=folder, check=True, capture_output=True)
    path = folder / "big.joblib"
    size = path.stat().st_size / 2**20
    assert main_references(path) == {"double", "AddOne"}, main_references(path)
    seconds = median_seconds(lambda: pickle_globals(path), rounds)
    print(f"scan: {path.name} {size:.1f} MiB, {len(pickle_globals(path))} globals: median {seconds * 1000:.1f} ms "
          f"({size / seconds:.0f} MiB/s) over {rounds} rounds")


def bench_parity(folder: Path, rounds: int) -> None:
    from nbship.check import inspect_notebook
    from nbship.parity import run_parity
    from nbship.render import build_files
    from nbship.render.writer import write_tree

    result = inspect_notebook(notebook(folder / "nb"))
    assert result.spec is not None, result.findings
    spec = result.spec
    context = folder / "context"
    write_tree(build_files(spec), context)

    def plain() -> None:
        problems, _, _ = run_parity(spec, context)
        assert not problems, problems

    def observed() -> None:
        problems, opened, _ = run_parity(spec, context, observe=True)
        assert not problems and opened is not None and "model.joblib" in opened, (problems, opened)

    plain_s, observed_s = median_seconds(plain, rounds), median_seconds(observed, rounds)
    print(f"parity: in the build context median {plain_s:.2f} s; in the notebook's folder with the open audit "
          f"hook median {observed_s:.2f} s; ratio {observed_s / plain_s:.2f} ({rounds} rounds each)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mib", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench_scan(Path(tmp), args.mib, args.rounds)
        bench_parity(Path(tmp), args.rounds)


if __name__ == "__main__":
    main()
