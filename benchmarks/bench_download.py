"""Benchmark: what the weights downloader costs over a plain copy, and what resuming saves (issue 15).

Serves a file of ``--mb`` megabytes from a local HTTP server on 127.0.0.1 (``tests/fixtures/fileserver.py``, in a
process of its own so that it does not share the downloader's interpreter) and times, ``--rounds`` times each, in
the same run:

- ``plain``: ``urllib`` reads the response into a file, nothing else (the floor);
- ``fetch``: ``nbship.runtime.artifacts.fetch_file`` (streams to ``.part``, sha256 while streaming, progress
  checks, the lock file, the final rename);
- ``verify``: the same call when the file is already in place (what a restart with a cache volume costs);
- ``resume``: a download cut after half the file by the server, retried at once, resuming with a range request.

Printed per case: the median seconds and MB/s, and the ratio to ``plain``.

    .venv/bin/python benchmarks/bench_download.py [--mb 256] [--rounds 5]
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nbship.runtime.artifacts import fetch_file  # noqa: E402
from nbship.runtime.sources import opener_for  # noqa: E402
from tests.fixtures.fileserver import FileServer, file_server  # noqa: E402


def serve(data: bytes, faults: list[str], queue: Any) -> None:
    with file_server(FileServer(files={"/w.bin": data, "/cut.bin": data}, faults={"/cut.bin": faults})) as server:
        queue.put(server.url)
        time.sleep(3600)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    data = b"".join(hashlib.sha256(str(i).encode()).digest() * 32768 for i in range(args.mb))  # 1 MiB each
    sha = hashlib.sha256(data).hexdigest()
    timings: dict[str, list[float]] = {"plain": [], "fetch": [], "verify": [], "resume": []}
    queue: Any = multiprocessing.get_context("fork").Queue()
    # every other request for /cut.bin is cut after half the file; the one after it (the resume) is whole
    faults = [f"drop:{len(data) // 2}", "whole"] * args.rounds
    server = multiprocessing.get_context("fork").Process(target=serve, args=(data, faults, queue), daemon=True)
    server.start()
    url = queue.get(timeout=30)
    with tempfile.TemporaryDirectory() as tmp:
        uri, cut = url + "/w.bin", url + "/cut.bin"
        for round_ in range(args.rounds):
            folder = Path(tmp) / str(round_)
            folder.mkdir()
            started = time.perf_counter()
            with urllib.request.urlopen(uri) as response, open(folder / "plain.bin", "wb") as out:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
            timings["plain"].append(time.perf_counter() - started)

            started = time.perf_counter()
            fetch_file(folder / "w.bin", uri, sha, opener=lambda: opener_for(uri))
            timings["fetch"].append(time.perf_counter() - started)

            started = time.perf_counter()
            fetch_file(folder / "w.bin", uri, sha, opener=lambda: opener_for(uri))
            timings["verify"].append(time.perf_counter() - started)

            started = time.perf_counter()
            fetch_file(folder / "r.bin", cut, sha, opener=lambda: opener_for(cut), sleep=lambda s: None)
            timings["resume"].append(time.perf_counter() - started)
            for path in folder.iterdir():
                path.unlink()
    server.terminate()
    plain = statistics.median(timings["plain"])
    print(f"{args.mb} MiB from 127.0.0.1, median of {args.rounds} rounds")
    print(f"{'case':<8} {'seconds':>8} {'MB/s':>8} {'vs plain':>9}")
    for case, values in timings.items():
        median = statistics.median(values)
        print(f"{case:<8} {median:>8.3f} {len(data) / 1e6 / median:>8.0f} {median / plain:>8.2f}x")


if __name__ == "__main__":
    main()
