"""Image stage: a rendered build context → an image, built, smoke-tested and optionally pushed.

- ``builder.py``: the ``ImageBuilder`` protocol, the content-hash tag, the build or reuse, the push;
- ``smoke.py``: the smoke test (the image run as the pod runs it, answering the notebook's example);
- ``docker_engine.py``: ``ImageBuilder`` on the docker SDK (classic builder), its errors translated once;
- ``build.py``: the stage's one public function, ``build_context`` → ``BuildRecord``.

Nothing is imported here, so ``import nbship.image.builder`` stays light.
"""
