"""Combining per-request model inputs into one batch and splitting the model's output back, by type.

``combine(parts)`` joins what ``preprocess`` returned for each request into the one value ``predict`` receives;
``split(output, sizes, parts)`` cuts ``predict``'s answer into one piece per request, each as long as that
request's input. The types it knows, by rows (the first axis):

- pandas ``DataFrame`` / ``Series``: concatenated with a fresh index; a piece gets back its request's index;
- numpy ``ndarray`` (at least one dimension): concatenated on axis 0, split on it;
- torch ``Tensor`` (at least one dimension): ``torch.cat`` on dimension 0, ``split`` on it;
- ``list``: concatenated, sliced.

Anything else (a dict, a tuple, a scalar, a 0-d array, a mix of types) raises ``NotBatchable``, and the caller
runs the requests one by one. The libraries are recognised by their type's module, so none is imported here
unless the values already come from it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any


class NotBatchable(Exception):
    """The values cannot be combined (or the output split) by rows; the message says why."""


def kind_of(value: Any) -> str | None:
    """``pandas``, ``numpy``, ``torch`` or ``list`` for a value batched by rows; None for any other."""
    if type(value) is list:
        return "list"
    root = type(value).__module__.partition(".")[0]
    if root == "pandas" and type(value).__name__ in ("DataFrame", "Series"):
        return "pandas"
    if root == "numpy" and type(value).__name__ == "ndarray":
        return "numpy" if value.ndim >= 1 else None
    if root == "torch" and "torch" in sys.modules and isinstance(value, sys.modules["torch"].Tensor):
        return "torch" if value.dim() >= 1 else None
    return None


def _describe(value: Any) -> str:
    kind = type(value)
    return f"{kind.__module__}.{kind.__qualname__}" if kind.__module__ != "builtins" else kind.__qualname__


def rows(value: Any) -> int:
    """How many rows a value of a known kind has."""
    return int(value.shape[0]) if kind_of(value) in ("pandas", "numpy", "torch") else len(value)


def combine(parts: Sequence[Any]) -> tuple[Any, list[int]]:
    """One batch of ``parts`` and the number of rows each contributed.

    Raises:
        NotBatchable: a part is of a kind not batched, or the parts are of different kinds or columns.
    """
    kinds = {kind_of(part) for part in parts}
    if None in kinds:
        odd = next(part for part in parts if kind_of(part) is None)
        raise NotBatchable(f"predict's input is a {_describe(odd)}; only pandas DataFrame/Series, numpy arrays, "
                           "torch tensors and lists are batched")
    if len(kinds) != 1:
        raise NotBatchable(f"predict's inputs mix {', '.join(sorted(k for k in kinds if k))}")
    kind = kinds.pop()
    sizes = [rows(part) for part in parts]
    try:
        if kind == "pandas":
            import pandas  # type: ignore[import-untyped]

            if len({type(part) for part in parts}) != 1 or (
                    isinstance(parts[0], pandas.DataFrame) and len({tuple(p.columns) for p in parts}) != 1):
                raise NotBatchable("predict's input frames differ in type or columns")
            return pandas.concat(list(parts), ignore_index=True), sizes
        if kind == "numpy":
            import numpy

            return numpy.concatenate(list(parts), axis=0), sizes
        if kind == "torch":
            import torch

            return torch.cat(list(parts), dim=0), sizes
        return [row for part in parts for row in part], sizes
    except NotBatchable:
        raise
    except (ValueError, TypeError, RuntimeError) as e:  # shapes or dtypes that do not stack
        raise NotBatchable(f"predict's inputs do not stack: {e}") from None


def split(output: Any, sizes: Sequence[int], parts: Sequence[Any]) -> list[Any]:
    """``output`` cut into pieces of ``sizes`` rows, one per part (a pandas piece takes its part's index).

    Raises:
        NotBatchable: the output is of a kind not batched, or its length is not the inputs' total.
    """
    kind = kind_of(output)
    if kind is None:
        raise NotBatchable(f"predict returned a {_describe(output)}; only pandas DataFrame/Series, numpy arrays, "
                           "torch tensors and lists are split by rows")
    total = rows(output)
    if total != sum(sizes):
        raise NotBatchable(f"predict returned {total} rows for a batch of {sum(sizes)} rows")
    pieces: list[Any] = []
    start = 0
    for size, part in zip(sizes, parts, strict=True):
        if kind == "pandas":
            piece = output.iloc[start:start + size]
            index = getattr(part, "index", None)
            piece = piece.set_axis(index if index is not None else range(size), axis=0)
        else:
            piece = output[start:start + size]
        pieces.append(piece)
        start += size
    return pieces
