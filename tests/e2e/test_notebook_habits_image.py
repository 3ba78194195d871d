"""The image smoke test of a notebook whose pickle refers to its own function and class (issue 12).

``FunctionTransformer(double)`` and a custom transformer ``AddOne`` are pickled as ``__main__.double`` and
``__main__.AddOne``; a setup helper reads a table a load cell defines. The image must load and answer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nbship.image.build import BuildOptions
from tests.fixtures.pickled_notebook import notebook
from tests.images import REGISTRY, rig_engine

pytestmark = [pytest.mark.docker, pytest.mark.network, pytest.mark.slow]



@pytest.fixture(scope="module")
def builder() -> Any:
    return rig_engine()


def test_the_image_loads_a_pickle_of_notebook_code_and_answers_the_example(builder: Any, tmp_path: Path) -> None:
    from nbship.project import build_notebook

    path = notebook(tmp_path / "nb")
    record = build_notebook(builder, path, tmp_path / "context",
                            BuildOptions(repository=f"{REGISTRY}/nbship-e2e-pickled-notebook", push=False))
    assert record.smoke is not None and record.smoke.passed, record.smoke
    assert "scikit-learn" in (tmp_path / "nb" / "requirements.lock").read_text()
