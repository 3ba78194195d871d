"""Benchmark of the lock stage: cold and warm locks of the tabular example with uv and pip-tools, and the
unchanged re-lock (the input-hash check, no resolver run).

Uses this machine's real pip settings (``pip config list``), as a user's ``nbship lock`` would. "Cold" runs
with empty resolver caches, "warm" with the caches the cold run filled; each run starts without a lock.
Targets (issues 3 and 9): cold lock with uv under 5 s, unchanged re-lock under 0.2 s.

    python benchmarks/bench_lock.py [--runs N] [--quick] [--resolvers uv,pip-tools]

``--quick`` runs each measurement once (pip-tools takes minutes per lock here).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
EXAMPLE = ROOT / "examples" / "notebooks" / "tabular-churn"

from nbship.deps import LockRequest, PipSettings, ensure_lock, pip_settings  # noqa: E402
from nbship.deps.lockfile import parse_lock  # noqa: E402
from nbship.extract import ImportRef  # noqa: E402


def tabular_request(folder: Path) -> LockRequest:
    """The example's own request (a copy, so its committed lock is not touched); by hand if extraction fails."""
    for name in ("churn.ipynb", "nbship.yaml", "requirements.in"):
        if (EXAMPLE / name).is_file():
            shutil.copy(EXAMPLE / name, folder / name)
    notebook = folder / "churn.ipynb"
    try:
        from nbship.deps.request import lock_request

        return lock_request(notebook, python="3.11")
    except Exception as e:  # the example or extraction is not ready: same imports, written out
        print(f"(building the request by hand: {type(e).__name__}: {e})")
        imports = tuple(ImportRef(m, 2, i) for i, m in enumerate(["numpy", "pandas", "sklearn", "joblib"], 1))
        return LockRequest(notebook, imports, (), (), "3.11", "linux/amd64")


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def lock_times(
    request: LockRequest, settings: PipSettings, runs: int, scratch: Path
) -> tuple[list[float], list[float], str]:
    cold: list[float] = []
    warm: list[float] = []
    text = ""
    for i in range(runs):
        caches = scratch / f"caches-{request.resolver}-{i}"
        os.environ["UV_CACHE_DIR"] = str(caches / "uv")
        os.environ["PIP_CACHE_DIR"] = str(caches / "pip")
        os.environ["PIP_TOOLS_CACHE_DIR"] = str(caches / "pip-tools")
        for bucket in (cold, warm):
            request.lock_path.unlink(missing_ok=True)
            bucket.append(timed(lambda: ensure_lock(request, settings=settings)))
            print(f"  {request.resolver:9} {'cold' if bucket is cold else 'warm'} run {i + 1}: {bucket[-1]:.2f} s",
                  flush=True)
        text = request.lock_path.read_text()
        shutil.rmtree(caches, ignore_errors=True)
    return cold, warm, text


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one run of each measurement")
    parser.add_argument("--resolvers", default="uv,pip-tools")
    args = parser.parse_args()
    runs = 1 if args.quick else args.runs
    settings = pip_settings()
    print("pip settings:", "; ".join(settings.describe()) or "(pip's defaults)")
    results: dict[str, tuple[float, float, str]] = {}
    with tempfile.TemporaryDirectory(prefix="nbship-bench-lock-") as tmp:
        folder = Path(tmp) / "tabular-churn"
        folder.mkdir()
        base = tabular_request(folder)
        print("imports:", ", ".join(sorted({i.module for i in base.imports})))
        for resolver in args.resolvers.split(","):
            request = replace(base, resolver=resolver)  # type: ignore[arg-type]
            cold, warm, text = lock_times(request, settings, runs, Path(tmp))
            results[resolver] = (statistics.median(cold), statistics.median(warm), text)
        relock = [timed(lambda: ensure_lock(base, settings=settings)) for _ in range(20)]
        assert not ensure_lock(base, settings=settings).resolved, "an unchanged re-lock ran a resolver"
        cli = [timed(lambda: subprocess.run([sys.executable, "-m", "nbship", "lock", str(base.notebook),
                                             "--python", "3.11"], check=True, capture_output=True))
               for _ in range(3)]
    print(f"\ntabular example, {runs} run(s) each, medians:")
    for resolver, (cold_s, warm_s, text) in results.items():
        pins = sum(1 for line in text.splitlines() if line and line[0] not in "# ")
        hashes = text.count("--hash=")
        print(f"  {resolver:9}  cold {cold_s:7.2f} s   warm {warm_s:7.2f} s   ({pins} pins, {hashes} hashes)")
    if {"uv", "pip-tools"} <= results.keys():
        uv, pt = results["uv"], results["pip-tools"]
        print(f"  ratio pip-tools / uv: cold {pt[0] / uv[0]:.0f}x, warm {pt[1] / uv[1]:.0f}x")
        uv_lock, pt_lock = parse_lock(uv[2]), parse_lock(pt[2])
        print(f"  same pins from both: {'yes' if uv_lock.pins == pt_lock.pins else 'NO'}")
        uv_hashes = {(e.name, h) for e in uv_lock.entries for h in e.hashes}
        pt_hashes = {(e.name, h) for e in pt_lock.entries for h in e.hashes}
        if uv_hashes == pt_hashes:
            print("  same hashes from both: yes")
        else:
            # uv takes a version's files from one index (a local mirror may hold only the wheel); pip-tools
            # merges every index's files of that version
            print(f"  hashes: {len(uv_hashes & pt_hashes)} shared, {len(uv_hashes - pt_hashes)} only in uv's lock, "
                  f"{len(pt_hashes - uv_hashes)} only in pip-tools' lock")
    if "uv" in results:
        verdict = "ok" if results["uv"][0] < 5 else "MISSED"
        print(f"  cold lock with uv: {results['uv'][0]:.2f} s   target < 5 s: {verdict}")
    median_relock = statistics.median(relock)
    print(f"unchanged re-lock (ensure_lock, no resolver): median {median_relock * 1000:.0f} ms of 20   "
          f"target < 200 ms: {'ok' if median_relock < 0.2 else 'MISSED'}")
    print(f"unchanged re-lock as a command (`nbship lock`, a fresh process): median {statistics.median(cli):.2f} s")


if __name__ == "__main__":
    main()
