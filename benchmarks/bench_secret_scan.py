"""Benchmark of the credential scanner on adversarial input (issue 13, point 10): is every pattern linear?

Three parts, each printing its figures:

1. The reported case: a PEM private-key header followed by K YAML-like lines (``a: b``), in a single-line string
   with escaped newlines and in a triple-quoted one; median scan time for K = 25 … 1600 and the growth ratio
   when K doubles (about 2 means linear; the old pattern took 25 s at K = 12 and never finished at 200).
2. Pumped input: for every prefix that starts a pattern (a PEM header, ``postgres://``, ``;password=``, ``?apikey=``,
   a token prefix…) and every pump of one or two pieces from a set of characters the patterns care about, the
   text ``prefix + pump × n + "!"`` and ``(prefix + pump) × n``. The 20 slowest are timed again at n, 4n and 16n
   pumps: printed are their growth from 4n to 16n (4 means linear, 16 quadratic) and the five steepest.
3. Throughput on ordinary code: the example notebooks' cells, and a 1 MB cell of code full of near misses.

    .venv/bin/python benchmarks/bench_secret_scan.py            # half the pump pairs, a few minutes
    .venv/bin/python benchmarks/bench_secret_scan.py --quick    # a seventh of them, smaller sizes
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from nbship.secrets import scan_source  # noqa: E402

PREFIXES = [
    "k = '-----BEGIN RSA PRIVATE KEY-----\\n", 'k = """-----BEGIN ENCRYPTED PRIVATE KEY-----\n',
    "u = 'postgres://", "u = 'x://u:", "c = 'Driver=x;password=", "c = 'host=db user=u password=",
    "u = 'https://h/p?apikey=", "u = 'https://h/p?password=", "t = 'ghp_", "t = 'github_pat_", "t = 'SG.",
    "t = 'sk-ant-api", "t = 'eyJ", "t = 'AKIA", "s = 'aws_secret_access_key = ", "api_key = '", "password = '",
    "# api_key = '", "HTTPBasicAuth('u', '", "wandb.login(key='", "x = 'InByaXZhdGVfa2V5I", "key",
    "t = 'hooks.slack.com/services/T", "AccountKey=",
]
PIECES = [" ", "a", "A", "0", ":", "=", "/", "@", "-", "_", ".", ",", ";", "'", '"', "\\n", "\n", "+", "[", "(",
          "a: b", "Proc-Type: 4,ENC", "MIIEpAIBAAKCAQEA", "://", "&", "?", "key=", "#"]


def median_time(func: Callable[[], object], runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        func()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def reported_case(quick: bool) -> float:
    print("1. PEM header + K YAML-like lines (the reported case)")
    worst = 0.0
    for style, line, opening, closing in (
        ("escaped newlines", "a: b \\n ", "k = '-----BEGIN RSA PRIVATE KEY-----\\n", "!'\n"),
        ("real newlines", "a: b  \n  ", 'k = """-----BEGIN RSA PRIVATE KEY-----\n', '!"""\n'),
    ):
        previous = None
        for k in (25, 50, 100, 200, 400, 800) if quick else (25, 50, 100, 200, 400, 800, 1600):
            text = opening + line * k + closing
            seconds = median_time(lambda text=text: scan_source(text), runs=9)
            worst = max(worst, seconds)
            growth = f"x{seconds / previous:4.1f}" if previous else "     "
            print(f"   {style:17} K={k:5}  median {seconds * 1000:8.2f} ms  {growth}")
            previous = seconds
    return worst


def pumped(quick: bool) -> tuple[float, float]:
    size, screen = (500, 400) if quick else (2500, 1000)
    pumps = [*PIECES, *("".join(p) for p in itertools.product(PIECES, repeat=2))]
    pumps = pumps[::7] if quick else pumps[::2]
    screened = []
    for prefix in PREFIXES:
        for pump in pumps:
            for repeated in (False, True):
                text = (prefix + pump) * (screen // 4 + 1) if repeated else prefix + pump * screen + "!"
                seconds = median_time(lambda text=text: scan_source(text), runs=1)
                screened.append((seconds, prefix, pump, repeated))
    screened.sort(reverse=True)
    print(f"2. pumped input: {len(screened)} cases of {screen} pumps; the 20 slowest timed again at n, 4n and 16n "
          f"pumps, n = {size} (medians of 5):")
    rows = []
    for _, prefix, pump, repeated in screened[:20]:
        times = []
        for n in (size, 4 * size, 16 * size):
            text = (prefix + pump) * (n // 4 + 1) if repeated else prefix + pump * n + "!"
            times.append((median_time(lambda text=text: scan_source(text), runs=5), len(text)))
        rows.append((times[2][0] / times[1][0], times, prefix, pump, repeated))
    rows.sort(reverse=True)
    for growth, times, prefix, pump, repeated in rows[:5]:
        shape = f"({prefix!r} + {pump!r}) * n" if repeated else f"{prefix!r} + {pump!r} * n"
        print(f"   x{growth:4.1f} from 4n to 16n  " + "  ".join(f"{t * 1000:7.1f} ms/{k // 1024} KB" for t, k in times)
              + f"  {shape}")
    worst_time = max(t for _, times, *_ in rows for t, _k in times)
    worst_growth = rows[0][0]
    print(f"   worst growth from 4n to 16n pumps: x{worst_growth:.1f} (4 is linear, 16 quadratic)")
    return worst_time, worst_growth


def throughput() -> None:
    cells = []
    for path in sorted((ROOT / "examples" / "notebooks").glob("*/*.ipynb")):
        cells += ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    text = "\n".join(cells)
    seconds = median_time(lambda: [scan_source(c) for c in cells], runs=7)
    print(f"3. example notebooks: {len(cells)} cells, {len(text) // 1024} KB  median {seconds * 1000:.1f} ms "
          f"({len(text) / seconds / 1e6:.1f} MB/s)")
    near_misses = (
        'api_key = os.environ["API_KEY"]  # token=..., password: see vault\n'
        'url = f"postgres://{user}:{pw}@{host}/db?sslmode=require"\n'
        'pem = "-----BEGIN PUBLIC KEY-----\\n" + body\n'
        "cache_key = 'model_v3_embeddings_cache_2024'\n"
        "conn = connect(host=h, user=u, password=pw)\n"
    )
    big = near_misses * (1_000_000 // len(near_misses))
    seconds = median_time(lambda: scan_source(big), runs=3)
    print(f"   1 MB of near misses in one cell: median {seconds * 1000:.0f} ms ({len(big) / seconds / 1e6:.1f} MB/s)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    quick = parser.parse_args().quick
    worst_reported = reported_case(quick)
    worst_time, worst_ratio = pumped(quick)
    throughput()
    print(f"time bounds: reported case <= {worst_reported * 1000:.1f} ms; pumped input up to 16n pumps "
          f"<= {worst_time * 1000:.1f} ms, growth <= x{worst_ratio:.1f} for 4x the input (4n to 16n)")


if __name__ == "__main__":
    main()
