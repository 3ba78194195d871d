"""Deploy stage: a build context's ``k8s/`` overlay + its build record → applied, rolled out, or rolled back.

- ``cluster.py``: the ``ClusterClient`` protocol (what nbship needs from an API server);
- ``kubectl.py``: ``ClusterClient`` on kubectl, its failures translated once;
- ``apply.py``: the deploy-time layer, apply, status and rollback → ``DeployResult``;
- ``rollout.py``: the rollout watch, judged as ``kubectl rollout status`` judges it;
- ``retry.py``: ``RetryingClient``, retrying a ``ClusterClient`` through a lost API server.

Nothing is imported here, so ``import nbship.deploy.rollout`` stays light.
"""
