"""The pipeline chained in ``nbship.project``: the same nbship.yaml gives the same image whichever way it is built."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from nbship.image.build import BuildOptions
from nbship.image.builder import RunLimits
from nbship.project import build
from nbship.spec import REPOSITORY_ENV, Overrides
from tests.fakes import FakeBuilder, FakeContainer
from tests.unit.test_image import FakeService

CHURN = Path(__file__).resolve().parents[2] / "examples" / "notebooks" / "tabular-churn"


@pytest.mark.slow
def test_build_dir_and_build_notebook_give_the_same_image_reference_and_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(REPOSITORY_ENV, raising=False)
    source = tmp_path / "churn"
    shutil.copytree(CHURN, source)
    config = source / "nbship.yaml"
    text = config.read_text().replace('cpu: "1"\n', 'cpu: "2"\n')
    config.write_text(text.replace("version: 1.0.0\n", "version: 1.0.0\nrepository: reg.example.com/ml/churn\n"))
    context = tmp_path / "build"

    services: list[FakeService] = []

    def builder() -> FakeBuilder:
        manifest = json.loads((context / "nbship.json").read_text()) if context.is_dir() else None
        if manifest is None:  # the first build renders the context: answer what the notebook answered
            manifest = json.loads((Path(__file__).resolve().parents[1] / "golden" / "tabular-churn" / "nbship.json")
                                  .read_text())
        version = {"name": "churn-model", "version": "1.0.0",
                   "lock_sha256": hashlib.sha256((source / "requirements.lock").read_bytes()).hexdigest()}
        services.append(FakeService(manifest["example"]["response"], version=version))
        return FakeBuilder(container=FakeContainer(services[-1].url))

    try:
        from_notebook = builder()
        record, path = build(from_notebook, source / "churn.ipynb", context, BuildOptions(), frozen=True)
        assert path == context / "nbship-build.json"
        from_directory = builder()
        again, _ = build(from_directory, context, tmp_path / "unused", BuildOptions())
        assert record.image == again.image and record.image.repository == "reg.example.com/ml/churn"
        limits = RunLimits(nano_cpus=2_000_000_000, memory_bytes=512 * 2**20)  # nbship.yaml's resources.limits
        assert from_notebook.runs[0]["limits"] == from_directory.runs[0]["limits"] == limits

        # flag > NBSHIP_REPOSITORY > nbship.yaml, the same rule for a build context
        monkeypatch.setenv(REPOSITORY_ENV, "env.example.com/churn")
        by_env, _ = build(builder(), context, tmp_path / "unused", BuildOptions())
        by_flag, _ = build(builder(), context, tmp_path / "unused", BuildOptions(),
                           overrides=Overrides(repository="flag.example.com/churn"))
        assert by_env.image.repository == "env.example.com/churn"
        assert by_flag.image.repository == "flag.example.com/churn"
        assert by_env.image.tag == by_flag.image.tag == record.image.tag  # the content tag does not depend on it
    finally:
        for service in services:
            service.close()
