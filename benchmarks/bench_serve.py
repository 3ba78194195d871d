"""Benchmark of the generated service against a hand-written minimal FastAPI app serving the same model.

Both run under uvicorn (same loop and HTTP implementation), pinned to CPU 0 with ``taskset``; the load generator
(``wrk``, one thread) runs on CPU 1. For each concurrency (1, 8, 32) the apps are measured in alternating rounds
and the median of the rounds is printed: requests/s, p50 and p99 latency, non-2xx answers, and the ratio
generated / hand-written. Idle memory is the RSS of each server after start-up and one request.

The hand-written app is what a person would write: ``def predict(payload: dict) -> dict`` calling the same
generated modules, run with ``uvicorn app:app`` defaults (its access log included). The generated app is
``python main.py`` exactly as in the image (schema validation, metrics, JSON access log, bounded pool); its
``queue_size`` is raised to 64 so that concurrency 32 measures throughput rather than load shedding.

    .venv/bin/python benchmarks/bench_serve.py                   # the tabular example (falls back to the fixture)
    .venv/bin/python benchmarks/bench_serve.py --model fixture   # a trivial model: the overhead alone
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CHURN = REPO / "examples" / "notebooks" / "tabular-churn" / "churn.ipynb"

HANDWRITTEN = '''\
import sys
from pathlib import Path

from fastapi import FastAPI

sys.path.insert(0, str(Path(__file__).resolve().parent))
{imports}

app = FastAPI()


@app.post("/predict")
def predict_route(payload: dict) -> dict:
    return {call}
'''


@dataclass
class Measure:
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int


def build_generated(model: str, root: Path, max_concurrency: int | None) -> tuple[Path, Any]:
    """The build context (``main.py``, package, runtime) and the example request."""
    context = root / "context"
    if model == "churn":
        sys.path.insert(0, str(REPO))
        from nbship.project import render_project

        render_project(CHURN, context, verify=False)
    else:
        sys.path.insert(0, str(REPO))
        from tests.fixtures.service._harness import build_context

        build_context(context)
    manifest_path = context / "nbship.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["service"]["queue_size"] = 64
    manifest["service"]["max_connections"] = 128  # at least max_concurrency + queue_size (as the config requires)
    if max_concurrency:
        manifest["service"]["max_concurrency"] = max_concurrency
    manifest_path.write_text(json.dumps(manifest))
    write_handwritten(context, manifest)
    return context, manifest["example"]["request"]


def write_handwritten(context: Path, manifest: dict[str, Any]) -> None:
    package, stages = manifest["package"], manifest["stages"]
    imports, call = [], "payload"
    for role in ("preprocess", "predict", "postprocess"):
        if stages.get(role):
            imports.append(f"from {package}.{stages[role]} import {role}")
            call = f"{role}({call})"
    (context / "handwritten.py").write_text(HANDWRITTEN.format(imports="\n".join(imports), call=call))


def start(argv: list[str], context: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "NBSHIP_HOST": "127.0.0.1", "NBSHIP_PORT": str(port)}
    with open(log, "ab") as out:
        process = subprocess.Popen(["taskset", "-c", "0", *argv], cwd=context, env=env, stdout=out, stderr=out)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{argv} exited {process.returncode}; see {log}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/docs", timeout=1)
            return process
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{argv} did not start; see {log}")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wrk(port: int, script: Path, connections: int, seconds: float) -> Measure:
    argv = ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{max(int(seconds), 1)}s", "--timeout", "30s",
            "--latency", "-s",
            str(script), f"http://127.0.0.1:{port}/predict"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    if errors:
        print(f"    wrk: {errors.group(0)}", file=sys.stderr)

    def percentile(p: str) -> float:
        value, unit = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return Measure(rps, percentile("50"), percentile("99"), int(non_2xx.group(1)) if non_2xx else 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=["churn", "fixture"], default="churn")
    parser.add_argument("--seconds", type=int, default=5, help="length of one measured round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--max-concurrency", type=int, help="override the service's max_concurrency (workers)")
    parser.add_argument("--baseline-no-access-log", action="store_true",
                        help="run the hand-written app with --no-access-log (stricter: it then logs nothing)")
    args = parser.parse_args()
    if shutil.which("wrk") is None or shutil.which("taskset") is None:
        raise SystemExit("needs wrk and taskset (apt-get install wrk util-linux)")
    model = args.model
    if model == "churn" and not CHURN.exists():
        print("the tabular example is missing: benchmarking the fixture instead", file=sys.stderr)
        model = "fixture"
    with tempfile.TemporaryDirectory(prefix="nbship-bench-") as tmp:
        context, example = build_generated(model, Path(tmp), args.max_concurrency)
        script = Path(tmp) / "post.lua"
        body = json.dumps(json.dumps(example))
        script.write_text(f'wrk.method = "POST"\nwrk.body = {body}\nwrk.headers["Content-Type"] = "application/json"\n')
        apps = {
            "generated": [sys.executable, "main.py"],
            "hand-written": [sys.executable, "-m", "uvicorn", "handwritten:app", "--host", "127.0.0.1",
                             *(["--no-access-log"] if args.baseline_no_access_log else []), "--port"],
        }
        processes: dict[str, subprocess.Popen[bytes]] = {}
        ports = {"generated": 18431, "hand-written": 18432}
        try:
            for name, argv in apps.items():
                full = argv + [str(ports[name])] if name == "hand-written" else argv
                processes[name] = start(full, context, ports[name], Path(tmp) / f"{name}.log")
                request = urllib.request.Request(
                    f"http://127.0.0.1:{ports[name]}/predict", json.dumps(example).encode(),
                    {"Content-Type": "application/json"})
                answer = json.loads(urllib.request.urlopen(request, timeout=30).read())
                print(f"{name}: answer to the example {answer}")
            time.sleep(1)
            idle = {name: rss_mib(p.pid) for name, p in processes.items()}
            for name in apps:
                wrk(ports[name], script, 8, 2)  # warm-up: imports, caches, thread pools
            results: dict[tuple[str, int], list[Measure]] = {}
            levels = [int(c) for c in args.concurrency.split(",")]
            for connections in levels:
                for _ in range(args.rounds):
                    for name in apps:  # alternate, so noise from other load hits both alike
                        results.setdefault((name, connections), []).append(
                            wrk(ports[name], script, connections, args.seconds))
        finally:
            for process in processes.values():
                process.terminate()
                process.wait(30)
    baseline = "without" if args.baseline_no_access_log else "with"
    print(f"\nmodel: {model}; server on CPU 0, wrk on CPU 1; median of {args.rounds} rounds of {args.seconds:g} s; "
          f"hand-written app {baseline} uvicorn's access log")
    print(f"{'concurrency':>11} {'app':>13} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for connections in levels:
        medians = {}
        for name in apps:
            runs = results[(name, connections)]
            m = Measure(statistics.median(r.rps for r in runs), statistics.median(r.p50_ms for r in runs),
                        statistics.median(r.p99_ms for r in runs), sum(r.non_2xx for r in runs))
            medians[name] = m
            print(f"{connections:>11} {name:>13} {m.rps:>9.1f} {m.p50_ms:>8.2f} {m.p99_ms:>8.2f} {m.non_2xx:>8}")
        ratio = medians["generated"].rps / medians["hand-written"].rps
        print(f"{connections:>11} {'ratio':>13} {ratio:>9.3f}   (generated / hand-written requests/s)")
    print("idle RSS: " + ", ".join(f"{name} {mib:.1f} MiB" for name, mib in idle.items()))


if __name__ == "__main__":
    main()
