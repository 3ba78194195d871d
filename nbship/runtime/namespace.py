"""Start-up: the kernel's single namespace for the generated modules, and pickles that name the notebook.

In a notebook every cell runs in one namespace, ``__main__``; the service splits the cells into one module per
role. Two things keep the kernel's behaviour:

- ``share_names``: once every module is loaded, each module sees every name the others define, so a function
  looks a name up when it is called, wherever the notebook defined it (a setup helper reading a table that a
  load cell defines). A name bound in several modules (``model`` in setup, then in load) has its last binding
  everywhere, as the kernel's namespace keeps only the last.
- ``resolve_main_references``: a pickle made in the notebook records its own functions and classes as
  ``__main__.X`` (or ``__mp_main__.X`` from a worker process). While the service runs, a lookup of a name
  ``__main__`` lacks falls back to the generated modules, so pickle, joblib, cloudpickle and ``torch.load`` find
  the exported definition of X, including while a load cell is still running.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Sequence
from typing import Any

_MAIN_MODULES = ("__main__", "__mp_main__")


def share_names(modules: Sequence[types.ModuleType]) -> None:
    """Give every module the last binding of each name, ``modules`` being in the order they ran.

    A later module's name replaces an earlier one's, in the earlier module too: its functions then see the value
    bound last, as in the kernel. (A later module that imported the name holds the value it imported, which is
    the last binding before it; only a module that ran after it can hold a newer one.)
    """
    namespace: dict[str, Any] = {}
    for module in modules:
        namespace.update((name, value) for name, value in vars(module).items() if not name.startswith("__"))
    for module in modules:
        vars(module).update(namespace)


def resolve_main_references(package: str, modules: Sequence[str]) -> None:
    """Let ``__main__.X`` and ``__mp_main__.X`` resolve to X as defined by the generated modules ``modules``."""
    qualified = [f"{package}.{name}" for name in modules]

    def lookup(name: str) -> Any:
        for module_name in reversed(qualified):  # the last binding so far, as in the kernel
            module = sys.modules.get(module_name)  # present while its cells run, so a load cell sees its own defs
            if module is not None and name in vars(module):
                return vars(module)[name]
        raise AttributeError(name)

    for main_name in _MAIN_MODULES:
        main = sys.modules.get(main_name)
        if main is None:
            main = sys.modules[main_name] = types.ModuleType(main_name)
        previous = vars(main).get("__getattr__")
        main.__getattr__ = _chained(lookup, previous)  # type: ignore[method-assign]


def _chained(lookup: Callable[[str], Any], previous: Callable[[str], Any] | None) -> Callable[[str], Any]:
    if previous is None or getattr(previous, "__nbship__", False):
        chained = lookup
    else:
        def chained(name: str) -> Any:
            try:
                return lookup(name)
            except AttributeError:
                return previous(name)
    chained.__nbship__ = True  # type: ignore[attr-defined]
    return chained
