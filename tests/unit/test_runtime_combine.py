"""Combining per-request model inputs by rows and splitting the model's output back (``runtime/combine.py``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nbship.runtime.combine import NotBatchable, combine, split


def test_data_frames_are_concatenated_by_rows_and_each_piece_gets_its_requests_index_back() -> None:
    parts = [pd.DataFrame({"a": [1.0], "b": ["x"]}), pd.DataFrame({"a": [2.0, 3.0], "b": ["y", "z"]}, index=[7, 8])]
    batch, sizes = combine(parts)
    assert sizes == [1, 2] and list(batch["a"]) == [1.0, 2.0, 3.0] and list(batch.index) == [0, 1, 2]
    pieces = split(pd.Series(batch["a"] * 10), sizes, parts)
    assert [list(p) for p in pieces] == [[10.0], [20.0, 30.0]]
    assert list(pieces[1].index) == [7, 8]  # postprocess may index the answer as it indexed its own frame
    assert pieces[0][0] == 10.0


def test_series_numpy_and_lists_split_by_their_first_axis() -> None:
    series, sizes = combine([pd.Series([1, 2]), pd.Series([3])])
    assert list(series) == [1, 2, 3] and sizes == [2, 1]
    arrays = [np.array([[1.0, 2.0]]), np.array([[3.0, 4.0]])]
    matrix, sizes = combine(arrays)
    assert matrix.shape == (2, 2)
    pieces = split(matrix[:, 0] + matrix[:, 1], sizes, arrays)
    assert [p.tolist() for p in pieces] == [[3.0], [7.0]]
    rows, sizes = combine([[1, 2], [3]])
    assert rows == [1, 2, 3] and split(["a", "b", "c"], sizes, [[1, 2], [3]]) == [["a", "b"], ["c"]]


def test_torch_tensors_are_concatenated_on_dimension_zero() -> None:
    torch = pytest.importorskip("torch")
    parts = [torch.ones(1, 3), torch.zeros(2, 3)]
    batch, sizes = combine(parts)
    assert tuple(batch.shape) == (3, 3) and sizes == [1, 2]
    pieces = split(batch.sum(dim=1), sizes, parts)
    assert [p.tolist() for p in pieces] == [[3.0], [0.0, 0.0]]


@pytest.mark.parametrize("parts, reason", [
    ([{"a": 1}, {"a": 2}], "input is a dict"),
    ([(1, 2), (3, 4)], "input is a tuple"),
    ([np.float64(1.0), np.float64(2.0)], "numpy.float64"),
    ([np.array(1.0), np.array(2.0)], "numpy.ndarray"),  # 0-d: no rows
    ([np.array([1.0]), [2.0]], "mix list, numpy"),
    ([pd.DataFrame({"a": [1]}), pd.DataFrame({"b": [1]})], "differ in type or columns"),
    ([np.zeros((1, 2)), np.zeros((1, 3))], "do not stack"),
])
def test_kinds_not_batched_by_rows_are_refused_with_the_reason(parts: list[object], reason: str) -> None:
    with pytest.raises(NotBatchable, match=reason):
        combine(parts)


def test_an_output_of_another_length_or_kind_is_not_split() -> None:
    parts = [np.zeros((1, 1)), np.zeros((1, 1))]
    with pytest.raises(NotBatchable, match="returned 1 rows for a batch of 2 rows"):
        split(np.zeros(1), [1, 1], parts)
    with pytest.raises(NotBatchable, match="returned a dict"):
        split({"y": [1, 2]}, [1, 1], parts)
