"""The static model-serving runtime, copied into every build context as ``nbship_runtime``.

It imports nothing from ``nbship`` (relative imports only), so the same tested code runs in the image.
The rendered ``main.py`` calls ``create_app(root)`` and, run as a script, ``run(app)``; FastAPI and uvicorn
are imported only by those calls, so ``python -m nbship_runtime.selftest`` stays light.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from fastapi import FastAPI


def create_app(root: Path) -> FastAPI:
    """The ASGI app serving the build context at ``root``; see ``app.create_app``."""
    from .app import create_app as factory

    return factory(root)


def run(app: FastAPI, *, host: str | None = None, port: int | None = None) -> NoReturn:
    """Serve ``app`` with uvicorn; see ``server.run``."""
    from .server import run as serve

    serve(app, host=host, port=port)
