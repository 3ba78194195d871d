"""Benchmark of ``nbship build`` on a real Docker engine: cold build, code-only rebuild, no-change rebuild,
image size against the base image, container start to ready.

    .venv/bin/python benchmarks/bench_build.py [--notebook examples/notebooks/tabular-churn/churn.ipynb] [--repeat 3]

Without ``--notebook`` it uses the hand-made build context of ``tests/fixtures/image`` (a ``load``, a
``predict`` and a ``postprocess`` module, one artifact, the runtime's own dependencies). A cold build is made
cold by giving it a base image nobody has built on yet (the base plus a unique label), so no layer cache
applies and pip downloads every wheel; the one-line change appends a line to the ``postprocess`` module.
Needs the rig of ``.ci/run`` (dockerd and the ``python:3.11-slim`` lookalike) and PyPI through pip's CA.
Prints medians over ``--repeat`` runs and the ratios the issue sets targets for; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nbship.deps import BuilderPipSettings, pip_settings  # noqa: E402
from nbship.image.build import BuildOptions, build_context  # noqa: E402
from nbship.image.builder import RunLimits  # noqa: E402
from nbship.image.docker_engine import connect  # noqa: E402
from nbship.image.smoke import smoke_test  # noqa: E402
from nbship.project import build_notebook  # noqa: E402

REPOSITORY = "nbship-bench"
MiB = 2**20


def fresh_base(client: object, base: str) -> str:
    """``base`` plus a unique label: an image id no layer cache has seen."""
    tag = f"nbship-bench-base:{uuid.uuid4().hex[:12]}"
    dockerfile = f"FROM {base}\nLABEL io.nbship.bench={tag.split(':')[1]}\n".encode()
    import io

    client.images.build(fileobj=io.BytesIO(dockerfile), tag=tag, rm=True)  # type: ignore[attr-defined]
    return tag


def with_base(context: Path, out: Path, base: str, new_base: str) -> Path:
    shutil.copytree(context, out)
    dockerfile = out / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace(f"FROM {base}", f"FROM {new_base}"))
    return out


def postprocess_module(context: Path) -> Path:
    manifest = json.loads((context / "nbship.json").read_text())
    module = manifest["stages"]["postprocess"] or manifest["stages"]["predict"]
    return context / manifest["package"] / f"{module}.py"


def split_sizes(client: object, image_id: str, base: str, context: Path) -> tuple[int, int, int]:
    """Bytes of the layers above the base: (dependencies, artifacts, nbship's own: runtime, code, bytecode, user)."""
    images = client.images  # type: ignore[attr-defined]
    above = images.get(image_id).history()[: -len(images.get(base).history())]
    targets = {f" in /app/{a['path']}" for a in json.loads((context / "nbship.json").read_text())["artifacts"]}
    deps = artifacts = own = 0
    for layer in above:
        step, size = str(layer["CreatedBy"]), int(layer["Size"])
        if " in /opt/venv" in step:
            deps += size
        elif any(step.rstrip("/ ").endswith(t.rstrip("/")) for t in targets):
            artifacts += size
        else:
            own += size
    return deps, artifacts, own


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebook", type=Path, help="an example notebook (default: the hand-made context)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import docker

    client = docker.from_env()
    builder = connect()
    settings = pip_settings().for_builder()

    def pip() -> BuilderPipSettings:
        return settings

    work = Path(tempfile.mkdtemp(prefix="nbship-bench-"))
    options = BuildOptions(repository=REPOSITORY, smoke=False, limits=RunLimits(10**9, 1024 * MiB))
    if args.notebook:
        source = work / "rendered"
        build_notebook(builder, args.notebook, source, options)  # renders and locks; its build is not timed
        what = f"{args.notebook} (rendered by nbship)"
    else:
        from tests.fixtures.image_context import make_image_context

        source = make_image_context(work / "rendered")
        what = "the hand-made context tests/fixtures/image (the tabular example was not used)"
    base = next(
        line.split()[1] for line in (source / "Dockerfile").read_text().splitlines() if line.startswith("FROM ")
    )
    created: list[str] = []
    cold, nochange, nochange_cli, code_change, ready = [], [], [], [], []
    record = None
    for run in range(args.repeat):
        new_base = fresh_base(client, base)
        created.append(new_base)
        context = with_base(source, work / f"run{run}", base, new_base)
        record = build_context(builder, context, options, pip=pip)
        created.append(str(record.image))
        cold.append(record.durations["build"])
        started = time.perf_counter()
        again = build_context(builder, context, options, pip=pip)
        assert again.reused
        nochange.append(time.perf_counter() - started)
        started = time.perf_counter()
        argv = [sys.executable, "-m", "nbship", "build", str(context), "--no-smoke", "--repository", REPOSITORY]
        argv += ["--record", str(work / "record.json")]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        assert done.returncode == 0 and "reused" in done.stderr, done.stderr
        nochange_cli.append(time.perf_counter() - started)
        module = postprocess_module(context)
        module.write_text(module.read_text() + f"# one-line change {run}\n")
        changed = build_context(builder, context, options, pip=pip)
        assert not changed.reused
        created.append(str(changed.image))
        code_change.append(changed.durations["build"])
        smoke = smoke_test(builder, record.image_id, context, limits=options.limits)
        assert smoke.passed, smoke
        ready.append(smoke.ready_seconds or 0.0)
    assert record is not None
    base_bytes = builder.image_size(base) or 0
    image_bytes = record.image_bytes or 0
    deps, artifacts, own = split_sizes(client, record.image_id, base, source)

    def median(values: list[float]) -> float:
        return statistics.median(values)

    print(f"nbship build benchmark — {what}; medians of {args.repeat} runs")
    print(f"  cold build (no layer cache, wheels downloaded): {median(cold):7.2f} s")
    print(
        f"  rebuild after a one-line postprocess change:    {median(code_change):7.2f} s  "
        f"= {100 * median(code_change) / median(cold):.1f}% of cold (target <= 15%)"
    )
    print(f"  no-change rebuild (content tag reused):         {median(nochange):7.2f} s  (target < 2 s)")
    print(f"  the same, whole `nbship build DIR --no-smoke`:  {median(nochange_cli):7.2f} s  (process start included)")
    print(f"  container start to ready (/readyz 200):         {median(ready):7.2f} s")
    print(
        f"  final image {image_bytes / MiB:7.1f} MiB = base {base_bytes / MiB:.1f} MiB + dependencies "
        f"{deps / MiB:.1f} MiB + artifacts {artifacts / MiB:.2f} MiB + nbship's own {own / MiB:.2f} MiB "
        "(target: own < 5 MiB)"
    )
    for tag in reversed(created):
        client.images.remove(tag, force=True)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
