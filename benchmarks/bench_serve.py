"""Benchmark of the generated service against a hand-written minimal FastAPI app serving the same model.

Both run under uvicorn (same loop and HTTP implementation), pinned to CPU 0 with ``taskset``; the load generator
(``wrk``, one thread) runs on CPU 1. For each concurrency (1, 8, 32) the apps are measured in interleaved rounds;
each round prints requests/s counting only 2xx answers, p50 and p99 latency and the share of non-2xx answers,
and the closing table gives the medians and the **median of the per-round ratios** generated / hand-written
(throughput and p99), which cancels most of the noise of a shared machine. Idle memory is the RSS of each server.

The hand-written app is what a person would write: ``def predict(payload: dict) -> dict`` calling the same
generated modules, run with ``uvicorn app:app`` defaults (its access log included). The generated app is
``python main.py`` exactly as in the image, with its defaults (schema validation, metrics, JSON access log,
admission by time, adaptive batching when ``nbship check`` proved it); ``generated-unbatched`` is the same with
batching off. The load cycles through the example and variants of it, so batches mix different rows; during
every round a side client sends a sample of payloads (four a second, to every app alike) and checks each answer
against the hand-written app's answer for the same payload before the load (parity's rule).

Before the rounds it prints what each stage of the notebook costs in-process on CPU 0: the hand-written app pays
preprocess + predict + postprocess per request, the batched service preprocess + postprocess per request and a
share of one combined predict, so these figures bound the throughput ratio any server can reach on this notebook.

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
import threading
import time
import urllib.error
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
    rps: float  # 2xx answers per second
    p50_ms: float
    p99_ms: float
    non_2xx_share: float
    parity_failures: int = 0


def build_generated(model: str, root: Path, max_concurrency: int | None) -> tuple[Path, Path, Any]:
    """Two build contexts (batching as proven, and off) and the example request."""
    context = root / "context"
    sys.path.insert(0, str(REPO))
    if model == "churn":
        from nbship.project import render_project

        render_project(CHURN, context)  # the parity run proves (or refuses) batching, as nbship build does
    else:
        from tests.fixtures.service._harness import build_context

        build_context(context, queue_size=None)  # the fixture's tiny queue cap would shed most of 32 clients
    manifest_path = context / "nbship.json"
    manifest = json.loads(manifest_path.read_text())
    print(f"batching: {manifest.get('batching')}")
    if max_concurrency:
        manifest["service"]["max_concurrency"] = max_concurrency
    manifest_path.write_text(json.dumps(manifest))
    write_handwritten(context, manifest)
    unbatched = root / "context-unbatched"
    shutil.copytree(context, unbatched, symlinks=True)
    manifest["batching"] = {"enabled": False, "note": "off for the benchmark", "sizes": []}
    (unbatched / "nbship.json").write_text(json.dumps(manifest))
    return context, unbatched, manifest["example"]["request"]


def stage_costs(context: Path, example: Any, rows: int = 32, repeat: int = 200) -> dict[str, float]:
    """Median milliseconds of each stage in this process, on CPU 0 like the servers: what bounds the ratios.

    The hand-written app pays preprocess + predict + postprocess per request; a batch of ``rows`` pays
    ``rows`` preprocesses and postprocesses and one combined predict.
    """
    from nbship.runtime.combine import NotBatchable, combine
    from nbship.runtime.pipeline import load_pipeline

    affinity, folder = os.sched_getaffinity(0), os.getcwd()
    os.sched_setaffinity(0, {0})
    os.chdir(context)  # the load cells open their artifacts relative to the build context, as in the image
    try:
        pipeline = load_pipeline(context)
        value = pipeline.preprocess(example)
        output = pipeline.predict(value)

        def median_ms(call: Any, times: int = repeat) -> float:
            samples = []
            for _ in range(times):
                started = time.perf_counter()
                call()
                samples.append(time.perf_counter() - started)
            return statistics.median(samples) * 1000

        costs = {"preprocess": median_ms(lambda: pipeline.preprocess(example)),
                 "predict alone": median_ms(lambda: pipeline.predict(value)),
                 "postprocess": median_ms(lambda: pipeline.postprocess(output))}
        try:
            batch = combine([value] * rows)[0]
        except NotBatchable:
            return costs  # not batched: the service runs each payload alone
        costs[f"predict per row in {rows}"] = median_ms(lambda: pipeline.predict(batch), repeat // 4) / rows
        costs[f"combine per row in {rows}"] = median_ms(lambda: combine([value] * rows), repeat // 4) / rows
        return costs
    finally:
        os.chdir(folder)
        os.sched_setaffinity(0, affinity)


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


def post(port: int, payload: Any) -> tuple[int, Any]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/predict", json.dumps(payload).encode(),
                                     {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, None


def payloads(example: Any, count: int) -> list[Any]:
    """The example and variants of it with other numbers (``nbship_runtime.batching.variants``)."""
    from nbship.runtime.batching import variants

    found, current = [example], [example]
    while len(found) < count and len(current) < count * 9:
        current = [variants(value, step) for value in current for step in (1, 2, 3)]
        found += [value for value in current if value not in found]
    return found[:count]


def lua_script(path: Path, bodies: list[Any]) -> None:
    quoted = ", ".join(json.dumps(json.dumps(b)) for b in bodies)
    path.write_text(
        f"bodies = {{{quoted}}}\nlocal i = 0\nwrk.method = \"POST\"\n"
        "wrk.headers[\"Content-Type\"] = \"application/json\"\n"
        "request = function()\n  i = i % #bodies + 1\n  return wrk.format(nil, nil, nil, bodies[i])\nend\n")


class ParityProbe(threading.Thread):
    """During a round, posts sample payloads and checks each answer against the expected one."""

    def __init__(self, port: int, samples: list[tuple[Any, Any]]) -> None:
        super().__init__(daemon=True)
        self.port, self.samples = port, samples
        self.stop = threading.Event()
        self.checked = self.failures = 0

    def run(self) -> None:
        from nbship.compare import same_response

        while not self.stop.is_set():
            for payload, expected in self.samples:
                status, answer = post(self.port, payload)
                if status == 200:  # a shed request is counted by wrk's non-2xx, not here
                    self.checked += 1
                    self.failures += bool(same_response(expected, answer))
                if self.stop.wait(0.25):  # light: a few percent of the load at one client
                    return


def wrk(port: int, script: Path, connections: int, seconds: float) -> Measure:
    argv = ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{max(int(seconds), 1)}s", "--timeout", "30s",
            "--latency", "-s", str(script), f"http://127.0.0.1:{port}/predict"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    total, elapsed, unit = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", out).groups()  # type: ignore[union-attr]
    seconds_taken = float(elapsed) * {"ms": 0.001, "s": 1.0, "m": 60.0}[unit]
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    failed = int(non_2xx.group(1)) if non_2xx else 0
    errors = re.search(r"Socket errors:.*", out)
    if errors:
        print(f"    wrk: {errors.group(0)}", file=sys.stderr)

    def percentile(p: str) -> float:
        value, unit = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    count = int(total)
    return Measure((count - failed) / seconds_taken, percentile("50"), percentile("99"), failed / max(count, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=["churn", "fixture"], default="churn")
    parser.add_argument("--seconds", type=int, default=5, help="length of one measured round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--max-concurrency", type=int, help="override the service's max_concurrency (workers)")
    parser.add_argument("--no-unbatched", action="store_true", help="skip the generated service with batching off")
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
        context, unbatched, example = build_generated(model, Path(tmp), args.max_concurrency)
        costs = stage_costs(context, example)
        print("in-process stage costs (median ms, CPU 0): " + ", ".join(f"{k} {v:.3f}" for k, v in costs.items()))
        script = Path(tmp) / "post.lua"
        bodies = payloads(example, 16)
        lua_script(script, bodies)
        apps: dict[str, tuple[list[str], Path]] = {
            "hand-written": ([sys.executable, "-m", "uvicorn", "handwritten:app", "--host", "127.0.0.1",
                              *(["--no-access-log"] if args.baseline_no_access_log else []), "--port"], context),
            "generated": ([sys.executable, "main.py"], context),
        }
        if not args.no_unbatched:
            apps["generated-unbatched"] = ([sys.executable, "main.py"], unbatched)
        processes: dict[str, subprocess.Popen[bytes]] = {}
        ports = {"hand-written": 18432, "generated": 18431, "generated-unbatched": 18433}
        try:
            for name, (argv, root) in apps.items():
                full = argv + [str(ports[name])] if name == "hand-written" else argv
                processes[name] = start(full, root, ports[name], Path(tmp) / f"{name}.log")
            expected = [(body, post(ports["hand-written"], body)[1]) for body in bodies]
            print(f"{len(bodies)} payloads; the example answers {expected[0][1]}")
            time.sleep(1)
            idle = {name: rss_mib(p.pid) for name, p in processes.items()}
            for name in apps:
                wrk(ports[name], script, 8, 2)  # warm-up: imports, caches, thread pools
            results: dict[tuple[str, int], list[Measure]] = {}
            levels = [int(c) for c in args.concurrency.split(",")]
            for connections in levels:
                for round_number in range(args.rounds):
                    names = list(apps) if round_number % 2 == 0 else list(reversed(apps))  # alternate the order
                    for name in names:
                        probe = ParityProbe(ports[name], expected[1::3])  # every app bears the same extra load
                        probe.start()
                        measure = wrk(ports[name], script, connections, args.seconds)
                        probe.stop.set()
                        probe.join(30)
                        measure.parity_failures = probe.failures
                        print(f"    parity: {probe.checked} sampled answers, {probe.failures} differ")
                        results.setdefault((name, connections), []).append(measure)
                        print(f"  c={connections} round {round_number + 1} {name}: {measure.rps:.1f} 2xx/s, "
                              f"p50 {measure.p50_ms:.2f} ms, p99 {measure.p99_ms:.2f} ms, "
                              f"non-2xx {measure.non_2xx_share:.1%}", flush=True)
            for name in apps:
                if name != "hand-written":
                    print(f"{name}: {batching_summary(ports[name])}")
        finally:
            for process in processes.values():
                process.terminate()
                process.wait(30)
    report(model, args, list(apps), levels, results, idle)


def batching_summary(port: int) -> str:
    """Mean payloads per predict call, queue wait and model time per call, from the service's /metrics."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30).read().decode()

    def value(name: str) -> float:
        found = re.search(rf"^{name}{{[^}}]*}} (\S+)$", text, re.M)
        return float(found.group(1)) if found else float("nan")

    calls = value("nbship_batch_model_seconds_count") or float("nan")
    requests = value("nbship_queue_wait_seconds_count") or float("nan")
    return (f"{value('nbship_batch_size_sum') / value('nbship_batch_size_count'):.2f} payloads per pipeline call, "
            f"{value('nbship_batch_model_seconds_sum') / calls * 1000:.2f} ms per predict call, "
            f"queue wait {value('nbship_queue_wait_seconds_sum') / requests * 1000:.2f} ms per request")


def report(model: str, args: argparse.Namespace, apps: list[str], levels: list[int],
           results: dict[tuple[str, int], list[Measure]], idle: dict[str, float]) -> None:
    baseline = "without" if args.baseline_no_access_log else "with"
    print(f"\nmodel: {model}; server on CPU 0, wrk on CPU 1; medians of {args.rounds} interleaved rounds of "
          f"{args.seconds:g} s; hand-written app {baseline} uvicorn's access log; req/s counts 2xx only")
    print(f"{'clients':>7} {'app':>20} {'2xx req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} {'parity':>7}"
          f" {'×req/s':>7} {'×p99':>6}")
    for connections in levels:
        hand = results[("hand-written", connections)]
        for name in apps:
            runs = results[(name, connections)]
            rps = statistics.median(r.rps for r in runs)
            p50 = statistics.median(r.p50_ms for r in runs)
            p99 = statistics.median(r.p99_ms for r in runs)
            non_2xx = statistics.median(r.non_2xx_share for r in runs)
            parity = str(sum(r.parity_failures for r in runs))
            ratio = statistics.median(r.rps / h.rps for r, h in zip(runs, hand, strict=True) if h.rps)
            p99_ratio = statistics.median(r.p99_ms / h.p99_ms for r, h in zip(runs, hand, strict=True) if h.p99_ms)
            print(f"{connections:>7} {name:>20} {rps:>10.1f} {p50:>8.2f} {p99:>8.2f} {non_2xx:>8.1%} {parity:>7}"
                  f" {ratio:>7.2f} {p99_ratio:>6.2f}")
    print("×req/s, ×p99: median of the per-round ratios app / hand-written; parity: sampled answers that differ")
    print("idle RSS: " + ", ".join(f"{name} {mib:.1f} MiB" for name, mib in idle.items()))


if __name__ == "__main__":
    main()
