"""Stage 3b, confirmed by observation: the files the parity run opened → artifacts and notes.

``nbship check`` runs the exported code in the notebook's folder and records the files it opens there
(``nbship_runtime.observe``). What it read is what the image must carry: a file opened but not found statically
becomes an artifact; a path found statically but never opened still ships, with a note; a path expression that
could not be evaluated gets a warning with the ``artifacts:`` entry to add, unless a file it could name was opened.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath

from nbship.artifact_paths import PathUse, unresolved_path_uses
from nbship.artifacts import ArtifactRef, describe_artifact, pickled_modules
from nbship.errors import Finding, Location
from nbship.extract import CleanCell
from nbship.notebook import Notebook
from nbship.spec import ProjectSpec


def apply_observation(
    spec: ProjectSpec, notebook: Notebook, cells: Sequence[CleanCell], opened: Mapping[str, str | None] | None
) -> tuple[ProjectSpec, list[Finding]]:
    """The spec with the opened files added as artifacts, and the notes about them (``opened`` None: not observed).
    """
    findings: list[Finding] = []
    unresolved = unresolved_path_uses(cells)
    if opened is None:
        return spec, [unresolved_finding(notebook.name, use, observed=False) for use in unresolved]
    shipped = [PurePosixPath(a.path) for a in spec.artifacts]
    remote = {PurePosixPath(r.path) for r in spec.remote_artifacts}
    added: list[ArtifactRef] = []
    for relative, where in sorted(opened.items()):
        path = PurePosixPath(relative)
        if path in remote or any(path == s or path.is_relative_to(s) for s in shipped):
            continue
        cell, line = _cell_line(where)
        if not (spec.source_dir / relative).resolve().is_relative_to(spec.source_dir.resolve()) \
                or any(part.startswith(".") for part in path.parts):
            findings.append(Finding(
                "warning", "artifact-not-shipped",
                f"'{relative}' is read by the exported code but is a dotfile or a link out of the notebook's "
                "folder: it is not shipped", Location(notebook.name, cell, line),
                "Secrets belong under `secrets:` in nbship.yaml; other files under the notebook's folder."))
            continue
        added.append(describe_artifact(spec.source_dir, relative, cell, line))
        needs = sorted(pickled_modules(spec.source_dir / relative))
        why = (f"its pickle needs {', '.join(needs)}, which `nbship lock` locks only for artifacts it can see"
               if needs else "so `nbship lock` sees it too")
        findings.append(Finding(
            "warning", "artifact-observed",
            f"'{relative}' is read by the exported code but no path in the cells names it: it "
            "ships as an artifact",
            Location(notebook.name, cell, line),
            f"Add it to nbship.yaml ({why}):\n  artifacts:\n    - path: {relative}",
        ))
    for artifact in spec.artifacts:
        if artifact.cell is None:
            continue  # declared in nbship.yaml: shipped as asked
        base = PurePosixPath(artifact.path)
        if not any(PurePosixPath(o) == base or PurePosixPath(o).is_relative_to(base) for o in opened):
            findings.append(Finding(
                "warning", "artifact-unopened",
                f"'{artifact.path}' is named here but the example run never opened it; it ships anyway",
                Location(notebook.name, artifact.cell, artifact.line),
                "If the service does not need it, remove the path from the exported cells to keep it out "
                "of the image.",
            ))
    for use in unresolved:
        if not any(_could_name(use, relative) for relative in opened):
            findings.append(unresolved_finding(notebook.name, use, observed=True))
    artifacts = tuple(sorted((*spec.artifacts, *added), key=lambda a: a.path))
    return dataclasses.replace(spec, artifacts=artifacts), findings


def unresolved_finding(notebook: str, use: PathUse, *, observed: bool) -> Finding:
    guess = use.tail if use.tail and "." in use.tail and not use.tail.startswith(".") else "<path>"
    return Finding(
        "warning", "artifact-unresolved",
        f"cannot tell which file {use.expression} names"
        + (", and the example run opened none that it could" if observed else ""),
        Location(notebook, use.cell, use.line),
        "If it is a file beside the notebook, add it to nbship.yaml so it ships:\n  artifacts:\n"
        f"    - path: {guess}",
    )


def _could_name(use: PathUse, relative: str) -> bool:
    return use.tail is None or relative.endswith(use.tail)


def _cell_line(where: str | None) -> tuple[int | None, int | None]:
    """``"nb.ipynb cell 3 line 2"`` → (3, 2)."""
    if not where or " cell " not in where:
        return None, None
    _, _, rest = where.rpartition(" cell ")
    cell, _, line = rest.partition(" line ")
    try:
        return int(cell), int(line)
    except ValueError:
        return None, None
