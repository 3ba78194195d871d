"""``nbship status``: notebook, lock, image and commit side by side for each revision the cluster keeps."""

from __future__ import annotations

from typing import Any

from nbship.deploy.history import history_table, revision_history

UID = "d-1"


def replicaset(revision: int, notebook: str, lock: str, digest: str, commit: str | None, ready: int) -> dict[str, Any]:
    annotations = {"nbship.io/notebook-sha256": notebook, "nbship.io/lock-sha256": lock}
    if commit:
        annotations["nbship.io/git-commit"] = commit
    return {
        "metadata": {"name": f"churn-{revision}", "ownerReferences": [{"uid": UID}],
                     "annotations": {"deployment.kubernetes.io/revision": str(revision)}},
        "spec": {"template": {"metadata": {"annotations": annotations}, "spec": {"containers": [
            {"name": "model", "image": f"127.0.0.1:5000/churn@sha256:{digest}"}]}}},
        "status": {"readyReplicas": ready},
    }


class Cluster:
    def __init__(self, replicasets: list[dict[str, Any]]) -> None:
        self.replicasets = replicasets

    def list_objects(self, kind: str, namespace: str, selector: str) -> list[dict[str, Any]]:
        assert kind == "replicaset" and namespace == "ml" and selector == "app=churn"
        return self.replicasets + [{"metadata": {"name": "stranger", "ownerReferences": [{"uid": "other"}]}}]


def test_each_revision_shows_its_notebook_lock_image_and_commit_newest_first() -> None:
    deployment = {"metadata": {"uid": UID, "annotations": {"deployment.kubernetes.io/revision": "3"}},
                  "spec": {"selector": {"matchLabels": {"app": "churn"}}}}
    cluster = Cluster([
        replicaset(2, "a" * 64, "b" * 64, "1" * 64, "c0ffee1234567890", 0),
        replicaset(3, "d" * 64, "b" * 64, "2" * 64, "facade987654321", 2),
        replicaset(1, "a" * 64, "e" * 64, "3" * 64, None, 0),
    ])
    revisions = revision_history(cluster, "ml", deployment)  # type: ignore[arg-type]
    assert [r.revision for r in revisions] == [3, 2, 1]
    assert revisions[0].current and not revisions[1].current
    assert revisions[0].as_json() == {
        "revision": 3, "current": True, "ready": 2, "notebook_sha256": "d" * 64, "lock_sha256": "b" * 64,
        "image": "127.0.0.1:5000/churn@sha256:" + "2" * 64, "git_commit": "facade987654321"}
    lines = history_table(revisions)
    assert lines[1].split() == ["*", "3", "d" * 12, "b" * 12, "2" * 12, "facade987654", "2"]
    assert lines[3].split() == ["1", "a" * 12, "e" * 12, "3" * 12, "-", "0"]  # built before commits were pinned
