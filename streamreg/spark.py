"""Spark as a second engine: ``streamreg.spark.fit(spark_df, target=...)`` → a LinearModel.

The fit is :func:`streamreg.fit`'s, run by a
:class:`~streamreg.engine.spark_runner.SparkRunner`: every pass (the solver's, the
``auto`` solver's second one, the robust covariance's) folds one state per Spark
partition on the executors and merges them on the driver in a fixed tree. Needs
the ``spark`` extra (``pip install streamreg[spark]``); the executors need streamreg
importable. Example (not run here: it needs a Spark session)::

    from pyspark.sql import SparkSession
    import streamreg.spark

    spark = SparkSession.builder.master("local[2]").getOrCreate()
    model = streamreg.spark.fit(spark.read.parquet("events/"), target="y", cov_type="HC1")
    print(model.summary())

With ``solver="exact"`` the result is bit-identical to ``streamreg.fit`` on the same
rows, however Spark partitions them. The gradient solvers are not run on Spark.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from .design import DesignSpec
from .engine.scan import resolve_batch_size
from .engine.spark_runner import SparkRunner, arrow_schema
from .errors import InputError
from .fitting import fit_blocks
from .model.linear_model import LinearModel
from .model.robust import parse_cov_type
from .solvers import GRADIENT_SOLVERS, check_solver


def fit(
    spark_df,
    *,
    target: str,
    features: Sequence[str] | str | None = None,
    exclude: Sequence[str] | str | None = None,
    weight: str | None = None,
    fit_intercept: bool = True,
    nulls: str = "drop",
    solver: str = "auto",
    drop_collinear: bool = False,
    cov_type: str | None = None,
    groups: str | None = None,
    batch_size: int | None = None,
) -> LinearModel:
    """Fit least squares on a Spark DataFrame: one state per partition, merged on the driver.

    The arguments mean what they mean in :func:`streamreg.fit` (``weight`` and
    ``groups`` are column names). ``solver`` is ``auto``, ``cholesky``, ``qr`` or
    ``exact``; ``auto`` may read the DataFrame a second time, and ``cov_type`` adds
    one more pass (cache the DataFrame if computing it is expensive). Rows with a
    null or NaN in a used column are dropped and counted, as in a local fit.
    """
    check_solver(solver)
    if solver in GRADIENT_SOLVERS:
        raise InputError(
            "the Spark engine fits the solvers auto, cholesky, qr and exact; "
            f"got solver={solver!r}."
        )
    cov_type, groups = parse_cov_type(cov_type, groups)
    schema = arrow_schema(spark_df)
    spec = DesignSpec.resolve(
        schema,
        target=target,
        features=features,
        exclude=exclude,
        weight=weight,
        fit_intercept=fit_intercept,
        nulls=nulls,
        groups=groups,
    )
    used = pa.schema([schema.field(c) for c in spec.columns])
    runner = SparkRunner(SparkRunner.select(spark_df, spec.columns), used)
    blocks = runner.blocks(spec, resolve_batch_size(len(spec.columns), batch_size))
    return fit_blocks(
        runner, blocks, solver=solver, drop_collinear=drop_collinear, cov_type=cov_type
    )
