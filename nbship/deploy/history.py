"""Deploy stage, provenance per revision: what each revision of the Deployment runs and where it came from.

Every revision is a ReplicaSet whose pod template carries the pin block's annotations (``nbship/render/pin.py``):
notebook sha256, lock sha256, the image (by digest once pushed) and the git commit of the build. ``nbship status``
shows them side by side, newest first, so a change of model, dependencies, image or code is visible at a glance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nbship.deploy.cluster import ClusterClient
from nbship.deploy.rollout import owned_replicasets


@dataclass(frozen=True)
class RevisionProvenance:
    revision: int
    current: bool
    ready: int
    notebook_sha256: str | None
    lock_sha256: str | None
    image: str | None  # the container's image: repository@sha256:… when pinned by digest
    git_commit: str | None

    def as_json(self) -> dict[str, Any]:
        return {"revision": self.revision, "current": self.current, "ready": self.ready,
                "notebook_sha256": self.notebook_sha256, "lock_sha256": self.lock_sha256, "image": self.image,
                "git_commit": self.git_commit}


def revision_history(
    client: ClusterClient, namespace: str, deployment: dict[str, Any], container: str = "model"
) -> tuple[RevisionProvenance, ...]:
    """The provenance of each revision the cluster still keeps (``revisionHistoryLimit``), newest first.

    Raises:
        DeployError, EnvironmentMissingError: the ReplicaSets cannot be listed.
    """
    current = str(deployment["metadata"].get("annotations", {}).get("deployment.kubernetes.io/revision", ""))
    found = []
    for replicaset in owned_replicasets(client, namespace, deployment):
        revision = replicaset["metadata"].get("annotations", {}).get("deployment.kubernetes.io/revision")
        if not revision:
            continue
        template = replicaset["spec"]["template"]
        annotations = template["metadata"].get("annotations", {})
        containers = template["spec"].get("containers", [])
        image = next((c.get("image") for c in containers if c.get("name") == container), None)
        found.append(RevisionProvenance(
            revision=int(revision),
            current=str(revision) == current,
            ready=int(replicaset.get("status", {}).get("readyReplicas", 0) or 0),
            notebook_sha256=annotations.get("nbship.io/notebook-sha256"),
            lock_sha256=annotations.get("nbship.io/lock-sha256"),
            image=image,
            git_commit=annotations.get("nbship.io/git-commit"),
        ))
    return tuple(sorted(found, key=lambda r: r.revision, reverse=True))


def history_table(revisions: tuple[RevisionProvenance, ...]) -> list[str]:
    """Plain lines: one per revision, the hashes shortened to 12 characters, the image's digest likewise."""
    def short(value: str | None) -> str:
        return value[:12] if value else "-"

    def digest(image: str | None) -> str:
        if not image:
            return "-"
        return image.split("@sha256:", 1)[1][:12] if "@sha256:" in image else image.rsplit("/", 1)[-1]

    lines = [f"{'revision':>9}  {'notebook':<12}  {'lock':<12}  {'image':<12}  {'commit':<12}  ready"]
    for r in revisions:
        marker = "*" if r.current else " "
        lines.append(f"{marker}{r.revision:>8}  {short(r.notebook_sha256):<12}  {short(r.lock_sha256):<12}  "
                     f"{digest(r.image):<12}  {short(r.git_commit):<12}  {r.ready}")
    return lines
