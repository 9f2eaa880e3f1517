"""Dask and distributed: one state per partition, merged by a tree reduction.

Every partition of the input — a Dask DataFrame partition, a block of rows of
Dask arrays, or one Parquet file read *by a worker* — is folded into a state
by the same engine as a local fit; states are merged pairwise in a binary
tree, so no state travels more than ⌈log₂ P⌉ hops and the client never holds
the data, only the final ``(p+1)²``-sized state. The merge order is fixed by
the graph, so a recomputed partition (a worker that died) gives the same bits.

>>> import numpy as np, dask.array as da
>>> from streamreg import fit
>>> X = da.from_array(np.arange(20.0).reshape(10, 2), chunks=(3, 2))
>>> y = X[:, 0] * 2 - X[:, 1] + 1
>>> model = fit(X, y, drop_collinear=True)
>>> model.aliased_
['x1']
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa

from ..design import DesignSpec
from ..errors import InputError
from ..io.sources import InMemorySource, Source


def is_dask_collection(obj) -> bool:
    # Only objects from dask's own modules can be collections here; checking the
    # module first keeps a plain local fit from importing dask (~0.1 s of start-up).
    if obj is None or not type(obj).__module__.startswith("dask"):
        return False
    import dask

    return dask.is_dask_collection(obj)


def tree_reduce(items: list, combine: Callable):
    """Merge delayed items pairwise, level by level (depth ⌈log₂ n⌉)."""
    from dask import delayed

    if not items:
        raise InputError("the Dask collection has no partitions.")
    merge = delayed(combine, pure=True)
    while len(items) > 1:
        items = [merge(items[i], items[i + 1]) if i + 1 < len(items) else items[i]
                 for i in range(0, len(items), 2)]
    return items[0]


class DaskPasses:
    """Streaming passes where each partition is a Dask task."""

    def __init__(self, partitions: list, make_source: Callable, spec: DesignSpec, *,
                 batch_size=None, client=None):
        self.partitions = partitions        # delayed objects (or plain values) per partition
        self.make_source = make_source      # (partition value, index) -> Source, run on a worker
        self.spec = spec
        self.batch_size = batch_size
        self.client = client

    # ------------------------------------------------------------------ building
    @classmethod
    def from_parquet(cls, src: Source, spec: DesignSpec, *, batch_size=None, client=None) -> DaskPasses:
        """One task per file: workers read the files; the client only read their footers."""
        parts = [Source([info], src.partition_types) for info in src.files]
        return cls(parts, _identity_source, spec, batch_size=batch_size, client=client)

    @classmethod
    def from_collections(cls, source, y=None, *, target=None, features=None, exclude=None,
                         weight=None, fit_intercept=True, nulls="drop", groups=None,
                         batch_size=None, client=None) -> DaskPasses:
        import dask.array as da
        import dask.dataframe as dd

        if isinstance(source, dd.DataFrame):
            if y is not None:
                raise InputError("with a Dask DataFrame name the target column (target=) instead of passing y.")
            if not target:
                raise InputError("a target column is required (target=).")
            if weight is not None and not isinstance(weight, str):
                raise InputError("with a Dask DataFrame, weight must be a column name.")
            schema = pa.Schema.from_pandas(source._meta, preserve_index=False)
            spec = DesignSpec.resolve(schema, target=target, features=features, exclude=exclude,
                                      weight=weight, fit_intercept=fit_intercept, nulls=nulls, groups=groups)
            parts = list(source.to_delayed())
            return cls(parts, _frame_source, spec, batch_size=batch_size, client=client)
        if isinstance(source, da.Array):
            if y is None:
                raise InputError("fit(X, y) with a Dask array X needs y.")
            x = source if source.ndim == 2 else None
            if x is None:
                raise InputError(f"X must be 2-D (rows, features); got {source.ndim} dimensions.")
            x = x.rechunk({1: -1})
            columns = [f"x{j}" for j in range(x.shape[1])]
            target = target or "y"
            pieces = [x, _as_dask_vector(y, x, "y")]
            names = [*columns, target]
            weight_name = None
            if weight is not None:
                if isinstance(weight, str):
                    raise InputError("with Dask arrays, weight must be an array of weights.")
                pieces.append(_as_dask_vector(weight, x, "weight"))
                weight_name = "sample_weight"
                names.append(weight_name)
            blocks = [p.to_delayed().ravel().tolist() for p in pieces]
            if len({len(b) for b in blocks}) != 1:
                raise InputError("X, y (and weight) must be split into the same number of row blocks.")
            schema = pa.schema([(n, pa.float64()) for n in names])
            spec = DesignSpec.resolve(schema, target=target, features=columns, weight=weight_name,
                                      fit_intercept=fit_intercept, nulls=nulls)
            parts = [list(group) for group in zip(*blocks)]
            return cls(parts, _ArrayBlocks(names), spec, batch_size=batch_size, client=client)
        raise InputError(f"cannot fit a Dask collection of type {type(source).__name__}; "
                         "expected a Dask DataFrame or Dask arrays X, y.")

    # ------------------------------------------------------------------ passes
    def accumulate(self, state_kind, label: str):
        from dask import delayed

        from ..fitting import merge_accumulations

        task = delayed(_partition_accumulation, pure=True)
        states = [task(part, i, self.make_source, self.spec, state_kind, self.batch_size)
                  for i, part in enumerate(self.partitions)]
        return self._compute(tree_reduce(states, merge_accumulations))

    def robust(self, model, cov_type: str) -> dict:
        from dask import delayed

        from ..model.robust import robust_record

        task = delayed(_partition_sandwich, pure=True)
        parts = [task(part, i, self.make_source, self.spec, model, cov_type, self.batch_size)
                 for i, part in enumerate(self.partitions)]
        return robust_record(self._compute(tree_reduce(parts, _merge_sandwiches)), model, self.spec)

    def _compute(self, graph):
        if self.client is not None:
            return self.client.compute(graph).result()
        return graph.compute()


# ---------------------------------------------------------------------- tasks (run on workers)
def _partition_accumulation(part, index, make_source, spec, state_kind, batch_size):
    from ..fitting import accumulate

    return accumulate(make_source(part, index), spec, batch_size=batch_size, state_kind=state_kind)


def _partition_sandwich(part, index, make_source, spec, model, cov_type, batch_size):
    from ..model.robust import sandwich_of

    return sandwich_of(make_source(part, index), spec, model, cov_type, batch_size=batch_size)


def _merge_sandwiches(a, b):
    return a.merge(b)


def _identity_source(part, index):
    return part


def _frame_source(frame: pd.DataFrame, index: int):
    return InMemorySource(pa.Table.from_pandas(frame, preserve_index=False), name=f"dask partition {index}")


class _ArrayBlocks:
    """Row blocks of X, y (and weights) → an in-memory table with named columns."""

    def __init__(self, names: list[str]):
        self.names = names

    def __call__(self, blocks, index: int):
        x = np.asarray(blocks[0], dtype=np.float64)
        columns = [x[:, j] for j in range(x.shape[1])]
        columns += [np.asarray(b, dtype=np.float64).reshape(-1) for b in blocks[1:]]
        if len({len(c) for c in columns}) != 1:
            raise InputError(f"row block {index} of X, y (and weight) has blocks of different lengths.")
        return InMemorySource(pa.table(dict(zip(self.names, columns))), name=f"dask block {index}")


def _as_dask_vector(values, x, label: str):
    import dask.array as da

    if not is_dask_collection(values):
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        if not any(np.isnan(c) for c in x.chunks[0]) and len(values) != x.shape[0]:
            raise InputError(f"X has {x.shape[0]} rows but {label} has {len(values)}.")
        if any(np.isnan(c) for c in x.chunks[0]):
            raise InputError(f"X has unknown chunk sizes; pass {label} as a Dask array split like X.")
        return da.from_array(values, chunks=(x.chunks[0],))
    values = values.reshape(-1) if values.ndim > 1 else values
    known = not any(np.isnan(c) for c in (*x.chunks[0], *values.chunks[0]))
    if known and values.chunks[0] != x.chunks[0]:
        values = values.rechunk((x.chunks[0],))
    return values


# ---------------------------------------------------------------------- prediction
def predict_dask(model, data):
    """Lazy predictions: a Dask Series for a Dask DataFrame, a Dask array for a Dask array."""
    import dask.array as da
    import dask.dataframe as dd

    if isinstance(data, dd.DataFrame):
        return data.map_partitions(_predict_frame, model, meta=pd.Series(dtype="float64", name="prediction"))
    if isinstance(data, da.Array):
        if data.ndim != 2:
            raise InputError(f"expected a 2-D array of shape (rows, {model.n_features_in_}); got {data.ndim}-D.")
        if data.shape[1] != model.n_features_in_:
            raise InputError(f"the data has {data.shape[1]} columns; the model was fitted with {model.n_features_in_}.")
        return data.rechunk({1: -1}).map_blocks(model.predict, drop_axis=1, dtype=np.float64)
    raise InputError(f"cannot predict for a Dask collection of type {type(data).__name__}.")


def _predict_frame(frame: pd.DataFrame, model) -> pd.Series:
    return pd.Series(model.predict(frame), index=frame.index, name="prediction")


# ---------------------------------------------------------------------- clusters
@contextlib.contextmanager
def cluster_client(scheduler: str | None = None, workers: int | None = None,
                   timeout: float = 10.0) -> Iterator:
    """A ``distributed.Client`` to ``scheduler``, or to a local cluster of ``workers`` processes."""
    from distributed import Client, LocalCluster

    for name in ("distributed", "distributed.worker", "distributed.scheduler", "distributed.nanny"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if scheduler:
        try:
            client = Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise InputError(f"could not reach the Dask scheduler at {scheduler} within {timeout:g} s ({exc}).") from None
        with client:
            yield client
        return
    if workers is None or workers < 1:
        raise InputError(f"--workers must be a positive number of processes; got {workers}.")
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        yield client
