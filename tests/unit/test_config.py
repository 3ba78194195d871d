"""nbship.yaml: defaults without a file, and located errors with a 'did you mean' for a near miss."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbship.config import Config, load_config
from nbship.errors import ConfigError


def config_error(tmp_path: Path, text: str) -> str:
    (tmp_path / "nbship.yaml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nb.ipynb")
    return info.value.message


def test_no_file_means_documented_defaults(tmp_path: Path) -> None:
    config, path = load_config(tmp_path / "nb.ipynb")
    assert path is None and config == Config()
    assert config.port == 8080 and config.resources.requests.cpu == "250m" and config.gpu is None


def test_a_full_file_reads(tmp_path: Path) -> None:
    (tmp_path / "nbship.yaml").write_text(
        "name: churn-model\nversion: 1.2.0\ngpu:\n  count: 2\nsecrets:\n  - {env: API_KEY, secret: s, key: k}\n"
        "artifacts:\n  - path: weights/w.npz\n    uri: https://x/w.npz\n    sha256: " + "a" * 64 + "\n")
    config, _ = load_config(tmp_path / "nb.ipynb")
    assert config.name == "churn-model" and config.gpu is not None and config.gpu.count == 2
    assert config.secrets[0].env == "API_KEY" and config.artifacts[0].uri == "https://x/w.npz"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("resorces:\n  requests: {}\n", "nbship.yaml, line 1: unknown key 'resorces' (did you mean 'resources'?)"),
        ("name: ok\ngpu:\n  count: one\n", "nbship.yaml, line 3: gpu.count: expected an integer (got 'one')"),
        ("server:\n  max_concurency: 3\n",
         "nbship.yaml, line 2: unknown key 'server.max_concurency' (did you mean 'server.max_concurrency'?)"),
        ("name: Churn_Model\n", "nbship.yaml, line 1: name: must be a DNS-1123 label"),
        ("artifacts:\n  - path: w.bin\n    uri: https://x/w.bin\n",
         "nbship.yaml, line 2: artifacts.0: a remote artifact needs `sha256`"),
        ("name: [unclosed\n", "nbship.yaml, line 2: not valid YAML"),
        ("- a\n- b\n", "nbship.yaml: expected a mapping of keys at the top level"),
    ],
)
def test_errors_name_file_line_key_and_expectation(tmp_path: Path, text: str, message: str) -> None:
    assert config_error(tmp_path, text).startswith(message)
