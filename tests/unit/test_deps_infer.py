"""Lock stage, inference: imports → distributions pinned to what the notebook's environment has installed."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbship.deps.infer import FALLBACK_DISTRIBUTIONS, infer_requirements, installed_versions
from nbship.errors import LockError
from nbship.extract import ImportRef
from tests.fixtures.deps_env import install


@pytest.fixture
def env(tmp_path: Path) -> Path:
    return install(tmp_path / "site-packages", ("nbfx-alpha", "1.0.0"), ("fastapi", "0.120.0"))


@pytest.fixture
def notebook(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    return folder / "demo.ipynb"


def test_an_installed_module_is_pinned_to_the_environment_version(env: Path, notebook: Path) -> None:
    (found,) = infer_requirements([ImportRef("nbfx_alpha", 3, 1)], notebook, search_path=[str(env)])
    assert (found.distribution, found.version, found.spec) == ("nbfx-alpha", "1.0.0", "nbfx-alpha==1.0.0")
    assert found.imports == (ImportRef("nbfx_alpha", 3, 1),)


def test_the_pin_follows_whatever_version_is_installed(tmp_path: Path, notebook: Path) -> None:
    env = install(tmp_path / "other", ("nbfx-alpha", "1.1.0"))
    (found,) = infer_requirements([ImportRef("nbfx_alpha", 3, 1)], notebook, search_path=[str(env)])
    assert found.spec == "nbfx-alpha==1.1.0"


def test_a_distribution_without_top_level_txt_is_found_through_its_record(tmp_path: Path, notebook: Path) -> None:
    env = tmp_path / "site"
    info = env / "Odd_Name-2.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: Odd_Name\nVersion: 2.3\n")
    (info / "RECORD").write_text(
        "oddmod/__init__.py,,\nodd_ext.cpython-311-x86_64-linux-gnu.so,,\nOdd_Name-2.3.dist-info/METADATA,,\n"
    )
    refs = [ImportRef("oddmod", 2, 1), ImportRef("odd_ext", 2, 2)]
    found = infer_requirements(refs, notebook, search_path=[str(env)])
    assert [(f.distribution, f.spec) for f in found] == [("odd-name", "odd-name==2.3")]
    assert len(found[0].imports) == 2


def test_modules_not_installed_fall_back_to_the_table_unpinned(notebook: Path, tmp_path: Path) -> None:
    found = infer_requirements(
        [ImportRef("sklearn", 2, 1), ImportRef("cv2", 2, 2)], notebook, search_path=[str(tmp_path / "empty")]
    )
    assert {f.distribution: f.version for f in found} == {
        "scikit-learn": None,
        FALLBACK_DISTRIBUTIONS["cv2"]: None,
    }
    assert {f.spec for f in found} == {"scikit-learn", "opencv-python-headless"}


def test_the_environment_wins_over_the_table(tmp_path: Path, notebook: Path) -> None:
    env = tmp_path / "site"
    info = env / "scikit_learn-1.9.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: scikit-learn\nVersion: 1.9.1\n")
    (info / "top_level.txt").write_text("sklearn\n")
    (found,) = infer_requirements([ImportRef("sklearn", 2, 1)], notebook, search_path=[str(env)])
    assert found.spec == "scikit-learn==1.9.1"


def test_standard_library_local_modules_and_service_dependencies_are_left_out(env: Path, notebook: Path) -> None:
    (notebook.parent / "features.py").write_text("X = 1\n")
    (notebook.parent / "helpers").mkdir()
    (notebook.parent / "helpers" / "__init__.py").write_text("")
    refs = [
        ImportRef(m, 1, i)
        for i, m in enumerate(["os", "json", "__future__", "features", "helpers", "fastapi", "nbfx_alpha"], start=1)
    ]
    found = infer_requirements(refs, notebook, exclude=["FastAPI"], search_path=[str(env)])
    assert [f.distribution for f in found] == ["nbfx-alpha"]


def test_an_unknown_module_is_an_error_naming_import_cell_and_line(env: Path, notebook: Path) -> None:
    refs = [ImportRef("nbfx_alpha", 1, 1), ImportRef("mystery_lib", 4, 2)]
    with pytest.raises(LockError) as caught:
        infer_requirements(refs, notebook, search_path=[str(env)])
    assert "demo.ipynb, cell 4, line 2" in caught.value.message
    assert "mystery_lib" in caught.value.message
    assert caught.value.hint and "install" in caught.value.hint


def test_an_unknown_module_named_by_the_user_is_not_an_error(env: Path, notebook: Path) -> None:
    found = infer_requirements(
        [ImportRef("mystery_lib", 4, 2)], notebook, covered=["mystery-lib"], search_path=[str(env)]
    )
    assert found == ()


def test_the_previous_lock_maps_modules_not_installed_here(tmp_path: Path, notebook: Path) -> None:
    # a CI job has nbship but not the notebook's environment: the lock's module map still knows
    found = infer_requirements(
        [ImportRef("acme_features", 2, 1)],
        notebook,
        known={"acme_features": ("acme-feature-store",)},
        search_path=[str(tmp_path)],
    )
    assert [(f.distribution, f.version) for f in found] == [("acme-feature-store", None)]


def test_installed_versions_lists_the_environment(env: Path) -> None:
    assert installed_versions([str(env)]) == {"nbfx-alpha": "1.0.0", "fastapi": "0.120.0"}


def test_an_optional_import_not_installed_is_left_out_with_a_note_not_an_error(env: Path, notebook: Path) -> None:
    from nbship.deps.infer import optional_left_out

    # ipywidgets is in no table: required, it would be an error; matplotlib is in the table: optional, the
    # kernel ran without it, so the table's unpinned guess is not taken either
    refs = [ImportRef("nbfx_alpha", 1, 1), ImportRef("ipywidgets", 2, 2, optional=True),
            ImportRef("matplotlib", 2, 5, optional=True)]
    found = infer_requirements(refs, notebook, search_path=[str(env)])
    assert [f.spec for f in found] == ["nbfx-alpha==1.0.0"]
    notes = optional_left_out(refs, found, notebook)
    assert len(notes) == 2
    assert notes[0].startswith("demo.ipynb, cell 2, line 2: optional 'import ipywidgets'")
    assert "left out of the lock" in notes[0] and "requirements:" in notes[0]


def test_an_optional_import_installed_where_the_notebook_ran_is_pinned(env: Path, notebook: Path) -> None:
    from nbship.deps.infer import optional_left_out

    refs = [ImportRef("nbfx_alpha", 2, 2, optional=True)]
    found = infer_requirements(refs, notebook, search_path=[str(env)])
    assert [f.spec for f in found] == ["nbfx-alpha==1.0.0"]  # the notebook ran the try branch: so does the service
    assert optional_left_out(refs, found, notebook) == ()


def test_a_module_imported_optionally_and_also_unguarded_is_required(env: Path, notebook: Path) -> None:
    refs = [ImportRef("mystery_lib", 2, 2, optional=True), ImportRef("mystery_lib", 3, 1)]
    with pytest.raises(LockError) as caught:
        infer_requirements(refs, notebook, search_path=[str(env)])
    assert "demo.ipynb, cell 3, line 1" in caught.value.message
