"""``nbship init``: roles proposed from what cells do; tags written without touching anything else."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nbship.config import load_config
from nbship.notebook import parse_notebook
from nbship.scaffold import apply_roles, propose_roles
from tests.conftest import EXAMPLES
from tests.notebooks import code, write_notebook

Run = Callable[..., tuple[int, str, str]]


def untagged_copy(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    source = EXAMPLES / "text-sentiment"
    shutil.copytree(source, tmp_path / "nb")
    path = tmp_path / "nb" / "sentiment.ipynb"
    doc = json.loads(path.read_text())
    for cell in doc["cells"]:
        tags = cell.get("metadata", {}).get("tags")
        if tags is not None:
            cell["metadata"]["tags"] = [t for t in tags if t not in ("nbship:load", "nbship:preprocess")]
    path.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    return path, doc


def test_apply_adds_tags_and_keeps_everything_else(tmp_path: Path) -> None:
    path, before = untagged_copy(tmp_path)
    proposals = propose_roles(parse_notebook(path))
    assert {(p.cell, p.proposed) for p in proposals if p.changes} == {(9, "preprocess"), (17, "load")}
    assert apply_roles(path, proposals) == 2
    after = json.loads(path.read_text())
    for cell_before, cell_after in zip(before["cells"], after["cells"]):
        tags_after = cell_after.get("metadata", {}).pop("tags", None)
        tags_before = cell_before.get("metadata", {}).pop("tags", None)
        if tags_after != tags_before:
            assert tags_after == [*(tags_before or []), tags_after[-1]]
        assert cell_after == cell_before  # outputs, ids, source, other metadata untouched
    assert after["metadata"] == before["metadata"]
    original = EXAMPLES / "text-sentiment" / "sentiment.ipynb"
    assert [c.role for c in parse_notebook(path).cells] == [c.role for c in parse_notebook(original).cells]


def test_a_notebook_with_nothing_to_tag_is_not_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "churn.ipynb"
    shutil.copyfile(EXAMPLES / "tabular-churn" / "churn.ipynb", path)
    before = path.read_bytes()
    assert apply_roles(path, propose_roles(parse_notebook(path))) == 0
    assert path.read_bytes() == before


def test_init_writes_a_commented_config_that_loads(tmp_path: Path, run_cli: Run) -> None:
    path = write_notebook(tmp_path / "My Model.ipynb", code("import math"),
                          code("def predict(inputs):\n    return inputs"))
    code_, out, err = run_cli("init", path, "--apply")
    assert code_ == 0, err
    assert "predict (new)" in err and "tagged 2 cells" in err
    config, found = load_config(path)
    assert found is not None and config.name == "my-model" and config.python == "3.11"
    assert config.resources.limits.memory == "1Gi"  # defaults stay defaults: commented out
    assert [c.role for c in parse_notebook(path).cells] == ["setup", "predict"]
    code_, _, err = run_cli("init", path)
    assert code_ == 0 and "kept" in err


def test_the_readme_config_reference_is_generated_from_the_schema(update_golden: bool) -> None:
    from nbship.scaffold import config_reference
    from tests.conftest import ROOT

    readme = ROOT / "README.md"
    text = readme.read_text()
    start = text.index("<!-- config-reference:start")
    body_start = text.index("\n", start) + 1
    end = text.index("<!-- config-reference:end -->")
    if update_golden:
        readme.write_text(text[:body_start] + config_reference() + text[end:])
        text = readme.read_text()
        end = text.index("<!-- config-reference:end -->")
    assert text[body_start:end] == config_reference(), "run pytest --update-golden to regenerate the README table"
