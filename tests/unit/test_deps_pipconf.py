"""Lock stage, pip settings: read as pip reads them, scrubbed of credentials, filtered for the image."""

from __future__ import annotations

import os
from pathlib import Path

from nbship.deps import pip_settings, scrub_credentials
from nbship.deps.pipconf import PipSettings, parse_pip_config_list


def test_scrub_credentials_removes_user_and_password_from_every_url() -> None:
    text = (
        "fetch https://alice:t0k3n@pypi.corp.example/simple/x/ failed; "
        "also http://__token__:abc@h:8080/simple and https://public.example/simple"
    )
    scrubbed = scrub_credentials(text)
    assert "t0k3n" not in scrubbed and "alice" not in scrubbed and "abc" not in scrubbed
    assert "https://***@pypi.corp.example/simple/x/" in scrubbed
    assert "https://public.example/simple" in scrubbed


def test_pip_config_list_output_is_merged_in_pips_order() -> None:
    text = "\n".join(
        [
            "global.index-url='https://global.example/simple'",
            "global.extra-index-url='file:///opt/a/simple https://b.example/simple'",
            "global.find-links='/opt/wheels'",
            "install.index-url='https://install.example/simple'",
            "global.trusted-host='b.example c.example'",
            "global.constraint='/etc/constraints.txt'",
            ":env:.cert='/etc/ssl/corp.pem'",
            ":env:.default-timeout='180'",
            "freeze.index-url='https://ignored.example/simple'",
        ]
    )
    s = parse_pip_config_list(text)
    assert s.index_url == "https://install.example/simple"
    assert s.extra_index_urls == ("file:///opt/a/simple", "https://b.example/simple")
    assert s.find_links == ("/opt/wheels",)
    assert s.trusted_hosts == ("b.example", "c.example")
    assert s.constraints == ("/etc/constraints.txt",)
    assert (s.cert, s.timeout) == ("/etc/ssl/corp.pem", "180")


def test_pip_settings_reads_pips_config_file_and_variables(tmp_path: Path) -> None:
    config = tmp_path / "pip.conf"
    config.write_text("[global]\nindex-url = https://u:p@corp.example/simple\nfind-links = /srv/wheels\n")
    environ = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "PIP_CONFIG_FILE": str(config),
        "PIP_EXTRA_INDEX_URL": "https://extra.example/simple",
        "PIP_TRUSTED_HOST": "extra.example",
    }
    s = pip_settings(environ)
    assert s.index_url == "https://u:p@corp.example/simple"  # kept for resolving; scrubbed wherever shown
    assert "/srv/wheels" in s.find_links
    assert s.extra_index_urls == ("https://extra.example/simple",)
    assert s.trusted_hosts == ("extra.example",)
    assert all("u:p@" not in line for line in s.describe())


def test_the_builder_gets_remote_indexes_and_the_cert_and_is_told_what_was_dropped(tmp_path: Path) -> None:
    cert = tmp_path / "corp.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = PipSettings(
        index_url="https://u:p@corp.example/simple",
        extra_index_urls=("file:///opt/pypi/simple", "https://more.example/simple"),
        find_links=("/opt/wheels",),
        trusted_hosts=("more.example",),
        cert=str(cert),
        constraints=("/etc/xdg/pip/constraints.txt",),
    )
    builder = settings.for_builder()
    assert builder.index_url == "https://u:p@corp.example/simple"
    assert builder.extra_index_urls == ("https://more.example/simple",)
    assert builder.trusted_hosts == ("more.example",)
    assert builder.cert == cert
    dropped = "\n".join(builder.dropped)
    assert "file:///opt/pypi/simple" in dropped and "/opt/wheels" in dropped
    assert "/etc/xdg/pip/constraints.txt" in dropped
    assert "u:p@" not in dropped


def test_a_missing_cert_file_is_dropped_not_copied(tmp_path: Path) -> None:
    builder = PipSettings(cert=str(tmp_path / "gone.pem")).for_builder()
    assert builder.cert is None
    assert any("gone.pem" in d for d in builder.dropped)
