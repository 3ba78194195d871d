"""The local loop's remote weights: the copy beside the notebook, else one download into the user cache, with
the user's own credentials; ``nbship check`` on the GPU example with its weights only on a (local) server."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from nbship.artifacts import RemoteArtifact
from nbship.errors import EnvironmentMissingError, UserError
from nbship.runtime import sources
from nbship.weights import cache_dir, local_copy
from tests.conftest import EXAMPLES
from tests.fixtures.fileserver import FileServer, file_server

DATA = b"weights" * 10000
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def server() -> Iterator[FileServer]:
    with file_server(FileServer(files={"/enc.bin": DATA})) as state:
        yield state


def test_the_cache_follows_nbship_cache_dir_then_xdg_then_home(tmp_path: Path) -> None:
    assert cache_dir({"NBSHIP_CACHE_DIR": str(tmp_path)}) == tmp_path / "weights"
    assert cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "nbship" / "weights"
    assert cache_dir({}) == Path.home() / ".cache" / "nbship" / "weights"


def test_the_copy_beside_the_notebook_wins_and_nothing_is_downloaded(server: FileServer, tmp_path: Path) -> None:
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "enc.bin").write_bytes(DATA)
    remote = RemoteArtifact("weights/enc.bin", server.url + "/enc.bin", SHA)
    assert local_copy(remote, tmp_path, tmp_path / "cache") == tmp_path / "weights" / "enc.bin"
    assert server.seen == []


def test_without_one_it_is_downloaded_once_into_the_cache(server: FileServer, tmp_path: Path) -> None:
    remote = RemoteArtifact("weights/enc.bin", server.url + "/enc.bin", SHA)
    first = local_copy(remote, tmp_path / "project", tmp_path / "cache")
    assert first == tmp_path / "cache" / SHA / "enc.bin" and first.read_bytes() == DATA
    assert local_copy(remote, tmp_path / "project", tmp_path / "cache") == first
    assert len(server.seen) == 1
    assert not (tmp_path / "project").exists()  # nothing written beside the notebook


def test_a_failed_download_is_a_user_error_with_the_cause_and_what_to_do(server: FileServer, tmp_path: Path) -> None:
    remote = RemoteArtifact("weights/enc.bin", server.url + "/enc.bin", "0" * 64)
    with pytest.raises(UserError, match="weights/enc.bin: .*sha256 is .*expected 0{64}") as info:
        local_copy(remote, tmp_path, tmp_path / "cache")
    assert "beside the notebook" in str(info.value.hint)
    assert not any((tmp_path / "cache").rglob("enc.bin"))


def test_a_missing_client_library_is_an_environment_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sources.SCHEME_MODULES, "s3", "no_such_client_library")
    with pytest.raises(EnvironmentMissingError, match="needs no_such_client_library") as info:
        local_copy(RemoteArtifact("w/m.bin", "s3://b/m.bin", SHA), tmp_path, tmp_path / "cache")
    assert "nbship[s3]" in str(info.value.hint)


def test_check_runs_the_example_with_weights_that_exist_only_on_a_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli: Callable[..., tuple[int, str, str]]
) -> None:
    project = tmp_path / "gpu-embeddings"
    shutil.copytree(EXAMPLES / "gpu-embeddings", project)
    weights = (project / "weights" / "encoder.npz").read_bytes()
    shutil.rmtree(project / "weights")
    config = yaml.safe_load((project / "nbship.yaml").read_text())
    with file_server(FileServer(files={"/encoder-v3.npz": weights})) as store:
        config["artifacts"][0]["uri"] = store.url + "/encoder-v3.npz"
        (project / "nbship.yaml").write_text(yaml.safe_dump(config))
        monkeypatch.setenv("NBSHIP_CACHE_DIR", str(tmp_path / "cache"))
        for _ in range(2):
            code, _, err = run_cli("check", project / "embeddings.ipynb")
            assert code == 0, err
    assert [s.path for s in store.seen] == ["/encoder-v3.npz"]  # once, for both runs
    sha = config["artifacts"][0]["sha256"]
    assert (tmp_path / "cache" / "weights" / sha / "encoder.npz").read_bytes() == weights
    assert not (project / "weights").exists()
