"""Deploy stage, the deploy-time layer: which image to deploy, and a kustomization on top of the overlay pinning it.

``choose_image`` takes the image from ``--image`` or the build record (``nbship.image.record``), by digest when
it was pushed; ``deploy_layer`` writes, in a temporary copy of ``k8s/`` (the build context is never modified), a
kustomization that pins that image and, when the rendered startup budget was the default, sizes it from the load
time the smoke test measured.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbship.errors import UserError
from nbship.image.record import RECORD_FILE, RecordError
from nbship.image.record import read_build_record as read_record
from nbship.image.ref import ImageRef

LAYER = "nbship-deploy"


@dataclass(frozen=True)
class Target:
    """Where to deploy: the overlay of a build context, and optionally another namespace."""

    context_dir: Path
    env: str
    namespace: str | None = None


@dataclass(frozen=True)
class ImageChoice:
    reference: ImageRef  # by digest (repository@sha256:…) unless told otherwise
    load_seconds: float | None  # the smoke test's start-up: downloads, load cells and warm-up
    download_seconds: float | None = None
    git_commit: str | None = None  # of the build's source, from the build record


def choose_image(context_dir: Path, image: str | None = None, path: Path | None = None) -> ImageChoice:
    """The image to deploy: ``image`` when given, else the pushed digest of the build record.

    The record is ``path``, else ``nbship-build.json`` in the build context, else in the working directory
    (where ``nbship build`` writes it by default).

    Raises:
        UserError: there is no build record and no ``--image``, or the record cannot be read.
    """
    if path is None:
        candidates = [context_dir / RECORD_FILE, Path(RECORD_FILE)]
        path = next((c for c in candidates if c.is_file()), candidates[0])
    elif not path.is_file():
        raise UserError(f"{path}: no such build record", hint="nbship build writes it (see its --record)")
    record = None
    if path.is_file():
        try:
            record = read_record(path)
        except (OSError, RecordError) as e:
            raise UserError(str(e), hint="run nbship build again") from None
    smoke = record.smoke if record is not None else None
    load_seconds = smoke.startup_seconds if smoke is not None else None
    download_seconds = smoke.download_seconds if smoke is not None else None
    if image:
        return ImageChoice(ImageRef.parse(image), load_seconds, download_seconds)
    if record is not None:
        return ImageChoice(record.image_by_digest or record.image, load_seconds, download_seconds, record.git_commit)
    raise UserError(
        f"{context_dir}: no build record (nbship-build.json), so no image to deploy",
        hint=f"run `nbship build {context_dir} --push` first, or pass --image REPOSITORY@sha256:…",
    )


def _kustomize_image(reference: ImageRef) -> dict[str, str]:
    """Kustomize's ``images:`` fields for ``reference``: by digest, else by tag (``latest`` when it has none)."""
    if reference.digest:  # a tag written beside the digest stays in the name, as the user wrote it
        name = f"{reference.repository}:{reference.tag}" if reference.tag else reference.repository
        return {"newName": name, "digest": reference.digest}
    return {"newName": reference.repository, "newTag": reference.tag or "latest"}


@contextmanager
def deploy_layer(target: Target, image: ImageChoice | None) -> Iterator[Path]:
    """A temporary copy of ``k8s/`` with a kustomization on top of the overlay that pins image and budget.

    Without ``image`` the layer only sets the namespace: enough to find the Deployment (status, rollback).

    Raises:
        UserError: the build context has no such overlay (not rendered, or an unknown ``--env``).
    """
    import yaml

    k8s = target.context_dir / "k8s"
    if not (k8s / "overlays" / target.env / "kustomization.yaml").is_file():
        known = sorted(p.name for p in (k8s / "overlays").iterdir()) if (k8s / "overlays").is_dir() else []
        raise UserError(
            f"{target.context_dir}: no Kubernetes overlay '{target.env}' in k8s/overlays",
            hint=f"overlays here: {', '.join(known)}" if known else "run nbship render first",
        )
    base = yaml.safe_load((k8s / "base" / "kustomization.yaml").read_text(encoding="utf-8"))
    deployment = yaml.safe_load((k8s / "base" / "deployment.yaml").read_text(encoding="utf-8"))
    layer: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [f"../overlays/{target.env}"],
    }
    if target.namespace:
        layer["namespace"] = target.namespace
    if image is not None:
        layer["images"] = [{"name": base["images"][0]["name"], **_kustomize_image(image.reference)}]
        ops = _pin_ops(deployment, image)
        if ops:  # kustomize refuses an empty patch
            layer["patches"] = [{"target": {"kind": "Deployment", "name": deployment["metadata"]["name"]},
                                 "patch": yaml.safe_dump(ops, sort_keys=True)}]
    with tempfile.TemporaryDirectory(prefix="nbship-deploy-") as tmp:
        copy = Path(tmp) / "k8s"
        shutil.copytree(k8s, copy)
        if image is not None:
            _pin_copy(copy.parent, image)
        if target.namespace:
            _rescope_queries(copy / "overlays" / target.env, target.namespace)
        (copy / LAYER).mkdir()
        (copy / LAYER / "kustomization.yaml").write_text(yaml.safe_dump(layer, sort_keys=True), encoding="utf-8")
        yield copy / LAYER


def _rescope_queries(overlay: Path, namespace: str) -> None:
    """``--namespace``: the overlay's Prometheus queries (alerts, KEDA trigger) select the namespace deployed to.

    They were rendered with the overlay's namespace as ``namespace="<ns>"`` (in the KEDA patch JSON-escaped).
    """
    import yaml

    rendered = yaml.safe_load((overlay / "kustomization.yaml").read_text(encoding="utf-8")).get("namespace")
    if not rendered or rendered == namespace:
        return
    for path in overlay.glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        for old, new in ((f'namespace="{rendered}"', f'namespace="{namespace}"'),
                         (f'namespace=\\"{rendered}\\"', f'namespace=\\"{namespace}\\"')):
            text = text.replace(old, new)
        path.write_text(text, encoding="utf-8")


def _pin_copy(root: Path, image: ImageChoice) -> None:
    """Pin the image and its commit in the copy as ``nbship build --push`` does: /version reports them."""
    from nbship.render.pin import pin_manifests

    # rendered by an nbship without pins: the layer's images entry still pins the image
    with contextlib.suppress(ValueError):
        pin_manifests(root, str(image.reference), {"git-commit": image.git_commit})


def _pin_ops(deployment: dict[str, Any], image: ImageChoice) -> list[dict[str, Any]]:
    """The JSON patch: a startup budget sized from the measured load (the pin block names image and commit)."""
    from nbship.render.k8s import progress_deadline
    from nbship.spec import startup_budget

    ops: list[dict[str, Any]] = []
    annotations = deployment["metadata"].get("annotations", {})
    downloads = bool(deployment["spec"]["template"]["spec"].get("initContainers"))
    startup_seconds = int(annotations.get("nbship.io/startup-seconds", 0))
    if annotations.get("nbship.io/startup-source") == "default" and image.load_seconds is not None:
        budget = startup_budget(None, image.load_seconds)
        startup_seconds = budget.seconds
        period = deployment["spec"]["template"]["spec"]["containers"][0]["startupProbe"]["periodSeconds"]
        ops += [
            {"op": "replace", "path": "/spec/template/spec/containers/0/startupProbe/failureThreshold",
             "value": math.ceil(budget.seconds / period)},
            {"op": "replace", "path": "/metadata/annotations/nbship.io~1startup-seconds", "value": str(budget.seconds)},
            {"op": "replace", "path": "/metadata/annotations/nbship.io~1startup-source", "value": "measured"},
            {"op": "replace", "path": "/spec/progressDeadlineSeconds",
             "value": progress_deadline(budget.seconds, image.download_seconds, downloads)},
        ]
    elif downloads and image.download_seconds is not None:  # the init container's measured time, not the default
        ops.append({"op": "replace", "path": "/spec/progressDeadlineSeconds",
                    "value": progress_deadline(startup_seconds, image.download_seconds, downloads)})
    return ops
