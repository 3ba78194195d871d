"""Render stage, the pins: which image ``k8s/base`` deploys, and where it came from, as the tail of its kustomization.

``k8s/base/kustomization.yaml`` ends with one block that nbship owns, from the ``# nbship pins`` line to the end
of the file: kustomize's ``images:`` entry rewriting the Deployment's placeholder name to the real image, and a
patch writing the provenance annotations on the pod template (``nbship.io/notebook-sha256``, ``lock-sha256``,
``image``, ``git-commit``; the service reads the last two back through the downward API for ``/version``).

Render writes it with the content tag it will build (``repository:version-hash``); ``nbship build --push``
rewrites it with the digest it pushed and the commit it built, so ``kubectl apply -k k8s/overlays/<env>``, Argo CD
or Flux deploy exactly the smoke-tested image; ``nbship deploy`` pins the same way in its temporary copy. The
rest of the file is never touched.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

PIN_MARKER = "# nbship pins the image and its provenance"
ANNOTATIONS = ("notebook-sha256", "lock-sha256", "image", "git-commit")
KUSTOMIZATION = Path("k8s") / "base" / "kustomization.yaml"


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """``repository[:tag][@digest]`` → its parts; the colon of a registry port is not a tag."""
    name, _, digest = image.partition("@")
    repository, colon, tag = name.rpartition(":")
    if not colon or "/" in tag or not repository:
        return name, None, digest or None
    return repository, tag, digest or None


def pin_block(deployment: str, placeholder: str, image: str, provenance: Mapping[str, str | None]) -> str:
    """The nbship-owned tail of ``k8s/base/kustomization.yaml`` (``provenance`` keys: ``ANNOTATIONS``)."""
    repository, tag, digest = split_image(image)
    if digest and tag:  # a tag written beside the digest stays in the name, as the user wrote it
        repository = f"{repository}:{tag}"
    lines = [
        f"{PIN_MARKER} (rewritten by nbship build --push and nbship deploy).",
        "images:",
        f"  - name: {placeholder}",
        f"    newName: {repository}",
        f"    digest: {digest}" if digest else f"    newTag: {json.dumps(tag or 'latest')}",
    ]
    values = {**provenance, "image": image}
    ops = [(key, values[key]) for key in ANNOTATIONS if values.get(key)]
    lines += ["patches:", "  - target:", "      kind: Deployment", f"      name: {deployment}", "    patch: |-"]
    for key, value in ops:
        lines += [
            "      - op: add",
            f"        path: /spec/template/metadata/annotations/nbship.io~1{key}",
            f"        value: {json.dumps(value)}",
        ]
    return "\n".join(lines) + "\n"


def read_pins(context_dir: Path) -> tuple[str, str, dict[str, str]]:
    """(Deployment name, image placeholder, provenance annotations) of a rendered build context.

    Raises:
        FileNotFoundError: the context has no ``k8s/base/kustomization.yaml``.
        ValueError: the file has no nbship pin block (rendered by an older nbship, or edited).
    """
    import yaml

    text = (context_dir / KUSTOMIZATION).read_text(encoding="utf-8")
    if PIN_MARKER not in text:
        raise ValueError(f"{context_dir / KUSTOMIZATION}: no '{PIN_MARKER}' block; render the context again")
    document = yaml.safe_load(text)
    patch = document["patches"][-1]
    annotations = {
        op["path"].rsplit("nbship.io~1", 1)[1]: str(op["value"]) for op in yaml.safe_load(patch["patch"]) or []
    }
    return patch["target"]["name"], document["images"][0]["name"], annotations


def pin_manifests(context_dir: Path, image: str, provenance: Mapping[str, str | None]) -> None:
    """Rewrite the pin block of ``context_dir``'s base kustomization: ``image``, and ``provenance`` over the old.

    Raises:
        FileNotFoundError, ValueError: as ``read_pins``.
    """
    deployment, placeholder, current = read_pins(context_dir)
    merged = {**current, **{k: v for k, v in provenance.items() if v}}
    path = context_dir / KUSTOMIZATION
    text = path.read_text(encoding="utf-8")
    head = text[: text.index(PIN_MARKER)]
    partial = path.with_name(path.name + ".part")
    partial.write_text(head + pin_block(deployment, placeholder, image, merged), encoding="utf-8")
    os.replace(partial, path)
