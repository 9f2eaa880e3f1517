from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest


def write_parquet(path, columns: dict, row_group_size: int | None = None):
    """Write a dict of columns to ``path`` (parent folders created) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path, row_group_size=row_group_size)
    return path


def write_xy(path, x: np.ndarray, y: np.ndarray, weights=None, names=None, row_group_size=None):
    names = names or [f"x{j + 1}" for j in range(x.shape[1])]
    cols = {n: x[:, j] for j, n in enumerate(names)}
    cols["y"] = y
    if weights is not None:
        cols["w"] = weights
    return write_parquet(path, cols, row_group_size)


@pytest.fixture
def rng():
    return np.random.default_rng(20261127)
