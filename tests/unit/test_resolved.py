"""Renderers, the image stage and the deployer see only the resolved ``ProjectSpec``, never nbship.yaml as written.

Precedence and defaults are decided in ``nbship/spec.py`` (and ``nbship/resolved.py``, which it calls). A stage
downstream that reads ``spec.config`` or imports ``nbship.config`` would decide them a second time; the syntax
tree says whether one does, and a spec made or replaced with another config carries that config's values.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from nbship.config import Config
from nbship.spec import ProjectSpec

PACKAGE = Path(__file__).resolve().parents[2] / "nbship"
DOWNSTREAM = ("render", "image", "deploy")


def config_reads(path: Path, root: Path = PACKAGE.parent) -> list[str]:
    """Each ``<x>.config`` attribute read and each import of ``nbship.config`` in ``path``, as ``file:line: code``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        imports_config = (
            isinstance(node, ast.ImportFrom) and node.module == "nbship.config"
            or isinstance(node, ast.Import) and any(a.name == "nbship.config" for a in node.names)
        )
        if (isinstance(node, ast.Attribute) and node.attr == "config") or imports_config:
            found.append(f"{path.relative_to(root)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_stage_after_the_spec_reads_the_config_as_written() -> None:
    reads = [read for folder in DOWNSTREAM for path in sorted((PACKAGE / folder).rglob("*.py"))
             for read in config_reads(path)]
    assert reads == [], "read the resolved ProjectSpec field instead (add one in nbship/spec.py):\n" + "\n".join(reads)


def spec_config_reads(path: Path, root: Path = PACKAGE.parent) -> list[str]:
    """Each ``spec.config`` / ``<x>.spec.config`` read in ``path``: a spec's config, read past the spec stage."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [f"{path.relative_to(root)}:{node.lineno}: {ast.unparse(node)}" for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and node.attr == "config" and (
                isinstance(node.value, ast.Name) and node.value.id == "spec"
                or isinstance(node.value, ast.Attribute) and node.value.attr == "spec")]


def test_no_module_but_the_spec_stage_reads_a_specs_config() -> None:
    reads = [read for path in sorted(PACKAGE.rglob("*.py")) if path.name not in ("spec.py", "resolved.py")
             for read in spec_config_reads(path)]
    assert reads == [], "read the resolved ProjectSpec field instead (add one in nbship/spec.py):\n" + "\n".join(reads)


def test_the_check_sees_a_config_read(tmp_path: Path) -> None:
    module = tmp_path / "nbship" / "render" / "x.py"
    module.parent.mkdir(parents=True)
    module.write_text("from nbship.config import Config\n\ndef f(spec):\n    return spec.config.port\n")
    assert sorted(config_reads(module, tmp_path)) == [
        "nbship/render/x.py:1: from nbship.config import Config", "nbship/render/x.py:4: spec.config"]
    other = tmp_path / "nbship" / "y.py"
    other.write_text("def g(result):\n    return result.spec.config.port, result.config\n")
    assert [r.split(": ", 1)[1] for r in spec_config_reads(other, tmp_path)] == ["result.spec.config"]


def spec(config: dict[str, object]) -> ProjectSpec:
    return ProjectSpec(
        name="churn", version="1.0.0", package="churn", python_version="3.11", notebook_file="churn.ipynb",
        notebook_path=Path("/nowhere/churn.ipynb"), notebook_sha256="0" * 64, modules=(), parameters=(),
        settings=(), artifacts=(), remote_artifacts=(), example=None, config=Config.model_validate(config),
    )


def test_the_resolved_fields_follow_the_config_the_spec_is_made_or_replaced_with() -> None:
    plain = spec({})
    assert (plain.port, plain.gpu, plain.ingress, plain.monitor) == (8080, None, None, None)
    assert plain.allow_namespaces is None
    assert plain.repository == "churn" and plain.scaling.enabled and plain.downloads.kind == "emptyDir"
    configured = dataclasses.replace(plain, config=Config.model_validate({
        "port": 9000, "repository": "registry.example/churn", "gpu": {"cuda": "12.1"},
        "network_policy": {"enabled": True, "allow_namespaces": ["b", "a"]},
        "ingress": {"enabled": True, "host": "churn.example"}, "monitoring": {"enabled": True},
        "downloads": {"volume": {"claim": "weights"}}, "env": {"HF_ENDPOINT": "http://127.0.0.1"},
        "server": {"max_concurrency": 2, "batching": False}, "timeouts": {"shutdown_grace_seconds": 7},
    }))
    assert configured.port == configured.service.port == 9000
    assert configured.repository == "registry.example/churn"
    assert configured.gpu is not None and configured.gpu.cuda == "12.1" and configured.gpu.count == 1
    assert configured.allow_namespaces == ("a", "b")
    assert configured.ingress is not None and configured.ingress.host == "churn.example"
    assert configured.monitor is not None and configured.monitor.kind == "ServiceMonitor"
    assert (configured.downloads.kind, configured.downloads.claim, configured.downloads.env) == (
        "claim", "weights", ("HF_ENDPOINT",))
    assert configured.service.max_concurrency == 2 and configured.shutdown_grace_seconds == 7
    assert plain.batching_allowed and not configured.batching_allowed
    # the run's choice still beats nbship.yaml after a replace
    assert dataclasses.replace(configured, chosen_repository="127.0.0.1:5000/x").repository == "127.0.0.1:5000/x"


def test_the_resolved_fields_are_frozen() -> None:
    made = spec({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.port = 1  # type: ignore[misc]
