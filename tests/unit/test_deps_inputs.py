"""Lock stage, inputs: which source decides a distribution's versions, and where each requirement came from."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbship.deps.infer import InferredRequirement
from nbship.deps.inputs import collect_inputs, read_requirements_in
from nbship.errors import LockError
from nbship.extract import ImportRef, PipRequirement

NOTEBOOK = Path("/project/demo.ipynb")
SERVICE = ("fastapi>=0.110,<1",)


def _inferred(name: str, version: str | None, module: str, cell: int = 2) -> InferredRequirement:
    return InferredRequirement(name, version, (ImportRef(module, cell, 1),))


def _collect(**kwargs: object) -> dict[str, list[tuple[str, str]]]:
    args: dict[str, object] = dict(
        notebook=NOTEBOOK,
        pip_requirements=(),
        config_requirements=(),
        requirements_in=(),
        service_requirements=SERVICE,
        inferred=(),
        target="python 3.11 linux/amd64",
    )
    args.update(kwargs)
    inputs = collect_inputs(**args)  # type: ignore[arg-type]
    table: dict[str, list[tuple[str, str]]] = {}
    for r in inputs.requirements:
        table.setdefault(r.name, []).append((r.spec, r.where))
    return table


def test_inferred_pins_are_used_when_nobody_says_otherwise() -> None:
    table = _collect(inferred=[_inferred("scikit-learn", "1.9.1", "sklearn", cell=5)])
    assert table["scikit-learn"] == [
        ("scikit-learn==1.9.1", "demo.ipynb, cell 5, line 1 (import sklearn → scikit-learn)")
    ]
    assert table["fastapi"] == [("fastapi<1,>=0.110", "nbship's service runtime")]


def test_precedence_config_over_requirements_in_over_pip_over_inferred() -> None:
    inferred = [
        _inferred("pandas", "3.1.1", "pandas"),
        _inferred("numpy", "2.4.6", "numpy"),
        _inferred("joblib", "1.6.0", "joblib"),
    ]
    pip = (PipRequirement("pandas==3.0.0", 1, 1), PipRequirement("numpy<3", 1, 2), PipRequirement("joblib>=1", 1, 3))
    table = _collect(
        inferred=inferred,
        pip_requirements=pip,
        requirements_in=((3, "pandas>=2.9"), (4, "numpy==2.3.0")),
        config_requirements=("pandas==2.9.5",),
    )
    assert table["pandas"] == [("pandas==2.9.5", "nbship.yaml: requirements[0]")]
    assert table["numpy"] == [("numpy==2.3.0", "requirements.in, line 4")]
    assert table["joblib"] == [("joblib>=1", "demo.ipynb, cell 1, line 3 (%pip install)")]


def test_a_bare_name_keeps_the_version_the_notebook_ran_with() -> None:
    table = _collect(
        inferred=[_inferred("pandas", "3.1.1", "pandas")], pip_requirements=(PipRequirement("pandas", 1, 1),)
    )
    assert sorted(spec for spec, _ in table["pandas"]) == ["pandas", "pandas==3.1.1"]


def test_replaced_requirements_are_reported() -> None:
    inputs = collect_inputs(
        notebook=NOTEBOOK,
        pip_requirements=(),
        config_requirements=("pandas==2.9.5",),
        requirements_in=(),
        service_requirements=SERVICE,
        inferred=[_inferred("pandas", "3.1.1", "pandas")],
        target="t",
    )
    assert any("pandas==3.1.1" in n and "nbship.yaml: requirements[0]" in n for n in inputs.notes)


def test_untagged_pip_lines_count_only_for_what_the_service_imports() -> None:
    pip = (
        PipRequirement("matplotlib", 1, 1, exported=False),
        PipRequirement("pandas<4", 1, 2, exported=False),
        PipRequirement("requests", 3, 1, exported=True),
    )
    table = _collect(inferred=[_inferred("pandas", "3.1.1", "pandas")], pip_requirements=pip)
    assert "matplotlib" not in table
    assert table["pandas"] == [("pandas<4", "demo.ipynb, cell 1, line 2 (%pip install)")]
    assert "requests" in table


def test_user_requirements_apply_together_with_the_service_ranges() -> None:
    table = _collect(config_requirements=("fastapi==0.115.0",))
    assert sorted(spec for spec, _ in table["fastapi"]) == ["fastapi<1,>=0.110", "fastapi==0.115.0"]


def test_each_input_has_its_own_hash() -> None:
    base = dict(
        notebook=NOTEBOOK,
        pip_requirements=(),
        config_requirements=("a==1",),
        requirements_in=(),
        service_requirements=SERVICE,
        inferred=(),
        target="python 3.11 linux/amd64",
    )
    one = collect_inputs(**base)  # type: ignore[arg-type]
    two = collect_inputs(**{**base, "config_requirements": ("a==2",)})  # type: ignore[arg-type]
    changed = {k for k in one.hashes if one.hashes[k] != two.hashes[k]}
    assert changed == {"nbship.yaml"}
    assert one.input_hash != two.input_hash


def test_an_invalid_requirement_names_where_it_was_written() -> None:
    with pytest.raises(LockError, match=r"demo.ipynb, cell 2, line 3 \(%pip install\): 'git\+https://x/y.git'"):
        _collect(pip_requirements=(PipRequirement("git+https://x/y.git", 2, 3),))


def test_requirements_in_is_read_without_comments(tmp_path: Path) -> None:
    (tmp_path / "requirements.in").write_text("# pins\n\npandas>=2  # for io\nnumpy\n")
    assert read_requirements_in(tmp_path) == ((3, "pandas>=2"), (4, "numpy"))
    assert read_requirements_in(tmp_path / "nowhere") == ()


def test_pip_options_in_requirements_in_are_refused_with_the_line(tmp_path: Path) -> None:
    (tmp_path / "requirements.in").write_text("pandas\n--extra-index-url https://example.org/simple\n")
    with pytest.raises(LockError, match="requirements.in, line 2: pip option '--extra-index-url'"):
        read_requirements_in(tmp_path)
