"""The Spark engine against a local fit of the same rows, on a real local Spark session.

Oracles: streamreg's local fit of the same Parquet files (bit-identical for the exact
solver, whose sums do not depend on order or partitioning; ≤ 1e-12 relative otherwise),
numpy's lstsq on the √w-scaled rows for the weighted coefficients, and statsmodels for
the HC1 covariance. Skipped when pyspark or Java is missing.
"""

from __future__ import annotations

import os
import shutil
import sys

import numpy as np
import pytest
from conftest import write_parquet

pyspark = pytest.importorskip("pyspark")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("Spark needs Java (no java on PATH, no JAVA_HOME)", allow_module_level=True)

import streamreg  # noqa: E402
import streamreg.spark  # noqa: E402
from streamreg.errors import InputError, SchemaError  # noqa: E402

pytestmark = pytest.mark.filterwarnings(
    "ignore:PySpark does not yet fully support pandas:FutureWarning"
)
ROWS, FEATURES = 6000, 4
RELATIVE = 1e-12
FEATURE_NAMES = ["x1", "x2", "x3", "x4"]


def start_session(master: str, name: str, config: dict, log_level: str = "ERROR"):
    """A Spark session on loopback without its UI, with ``config``'s settings added."""
    from pyspark.sql import SparkSession

    # Python workers run this interpreter and find this checkout of streamreg through
    # PYTHONPATH, which they inherit.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    settings = {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.memory": "512m",
        **config,
    }
    builder = SparkSession.builder.master(master).appName(name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel(log_level)
    return session


@pytest.fixture(scope="module")
def spark():
    config = {
        "spark.sql.shuffle.partitions": "4",
        "spark.sql.files.maxPartitionBytes": "64k",  # several partitions per file
    }
    session = start_session("local[2]", "streamreg-tests", config)
    yield session
    session.stop()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Three files: features with offsets, heteroskedastic noise, weights, clusters, a NaN."""
    rng = np.random.default_rng(20261129)
    shift = np.array([1e3, -5.0, 0.0, 40.0])
    x = rng.standard_normal((ROWS, FEATURES)) * [1.0, 3.0, 0.5, 2.0] + shift
    noise = rng.standard_normal(ROWS) * (0.5 + np.abs(x[:, 1]) / 3)
    y = 2.0 + (x - shift) @ [1.5, -0.25, 4.0, 0.75] + noise
    weights = rng.uniform(0.2, 3.0, ROWS)
    firm = rng.integers(0, 40, ROWS)
    root = tmp_path_factory.mktemp("spark-data")
    x3 = x[:, 2].copy()
    x3[17] = np.nan  # one row dropped, and counted, on every path
    for part, rows in enumerate(np.array_split(np.arange(ROWS), 3)):
        columns = {"x1": x[rows, 0], "x2": x[rows, 1], "x3": x3[rows], "x4": x[rows, 3]}
        columns |= {"y": y[rows], "w": weights[rows], "firm": firm[rows]}
        write_parquet(root / f"part-{part}.parquet", columns, row_group_size=700)
    keep = ~np.isnan(x3)
    return {"dir": str(root), "x": x[keep], "y": y[keep], "w": weights[keep]}


def _relative(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def test_exact_solver_is_bit_identical_to_the_local_fit(spark, data):
    local = streamreg.fit(data["dir"], target="y", features=FEATURE_NAMES, solver="exact")
    frame = spark.read.parquet(data["dir"])
    assert frame.rdd.getNumPartitions() > 1
    on_spark = streamreg.spark.fit(frame, target="y", features=FEATURE_NAMES, solver="exact")
    assert on_spark.state_ == local.state_
    assert np.array_equal(on_spark.params, local.params)
    assert np.array_equal(on_spark.bse, local.bse)
    assert on_spark.rows_read_ == local.rows_read_ == ROWS
    assert on_spark.rows_dropped_by_column_ == local.rows_dropped_by_column_ == {"x3": 1}


def test_exact_solver_does_not_depend_on_the_partitioning(spark, data):
    # (The files' own partitioning is the test above.)
    frame = spark.read.parquet(data["dir"])
    options = dict(target="y", features=FEATURE_NAMES, solver="exact")
    local = streamreg.fit(data["dir"], **options)
    one = streamreg.spark.fit(frame.coalesce(1), **options)
    shuffled = streamreg.spark.fit(frame.repartition(12), **options)  # 12 × 500 rows
    assert shuffled.state_ == one.state_ == local.state_
    assert np.array_equal(shuffled.params, local.params)


def test_cholesky_qr_and_auto_agree_with_the_local_fit(spark, data):
    frame = spark.read.parquet(data["dir"])
    for solver in ("cholesky", "qr", "auto"):
        local = streamreg.fit(data["dir"], target="y", features=FEATURE_NAMES, solver=solver)
        on_spark = streamreg.spark.fit(frame, target="y", features=FEATURE_NAMES, solver=solver)
        assert _relative(on_spark.params, local.params) <= RELATIVE, solver
        assert _relative(on_spark.bse, local.bse) <= RELATIVE, solver
        assert abs(on_spark.rsquared - local.rsquared) <= RELATIVE
        assert on_spark.n_samples_ == local.n_samples_ == ROWS - 1


def test_same_partitions_give_the_same_bits(spark, data):
    frame = spark.read.parquet(data["dir"]).repartition(6, "firm").cache()
    first = streamreg.spark.fit(frame, target="y", features=FEATURE_NAMES, solver="cholesky")
    again = streamreg.spark.fit(frame, target="y", features=FEATURE_NAMES, solver="cholesky")
    assert np.array_equal(first.params, again.params)
    frame.unpersist()


def test_weighted_fit_matches_local_fit_and_lstsq(spark, data):
    frame = spark.read.parquet(data["dir"])
    options = dict(target="y", features=FEATURE_NAMES, weight="w")
    local = streamreg.fit(data["dir"], solver="cholesky", **options)
    on_spark = streamreg.spark.fit(frame, solver="cholesky", **options)
    assert _relative(on_spark.params, local.params) <= RELATIVE
    assert _relative(on_spark.bse, local.bse) <= RELATIVE
    assert on_spark.llf == pytest.approx(local.llf, rel=RELATIVE)
    root_w = np.sqrt(data["w"])
    design = np.column_stack([np.ones(len(data["y"])), data["x"]]) * root_w[:, None]
    expected = np.linalg.lstsq(design, data["y"] * root_w, rcond=None)[0]
    assert _relative(on_spark.params, expected) <= 1e-9
    exact_local = streamreg.fit(data["dir"], solver="exact", **options)
    exact_spark = streamreg.spark.fit(frame.repartition(4), solver="exact", **options)
    assert np.array_equal(exact_spark.params, exact_local.params)


def test_hc1_covariance_matches_local_fit_and_statsmodels(spark, data):
    sm = pytest.importorskip("statsmodels.api")
    frame = spark.read.parquet(data["dir"])
    options = dict(target="y", features=FEATURE_NAMES, cov_type="HC1")
    for solver in ("exact", "cholesky"):
        local = streamreg.fit(data["dir"], solver=solver, **options)
        on_spark = streamreg.spark.fit(frame, solver=solver, **options)
        assert on_spark.cov_type == "HC1"
        assert _relative(on_spark.cov_params(), local.cov_params()) <= RELATIVE
    oracle = sm.OLS(data["y"], sm.add_constant(data["x"])).fit(cov_type="HC1")
    assert _relative(on_spark.bse, oracle.bse) <= 1e-8


def test_cluster_covariance_matches_local_fit(spark, data):
    frame = spark.read.parquet(data["dir"])
    options = dict(target="y", features=FEATURE_NAMES, solver="cholesky")
    local = streamreg.fit(data["dir"], cov_type="cluster:firm", **options)
    on_spark = streamreg.spark.fit(frame, cov_type="cluster", groups="firm", **options)
    assert on_spark.robust_["n_groups"] == local.robust_["n_groups"] == 40
    assert _relative(on_spark.cov_params(), local.cov_params()) <= 1e-10


def test_in_memory_spark_frame_with_integer_column(spark):
    import pandas as pd

    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"a": rng.integers(0, 100, 500), "b": rng.standard_normal(500)})
    frame["y"] = 3.0 * frame["a"] - 2.0 * frame["b"] + rng.standard_normal(500)
    local = streamreg.fit(frame, target="y", solver="exact")
    on_spark = streamreg.spark.fit(
        spark.createDataFrame(frame).repartition(3), target="y", solver="exact"
    )
    assert list(on_spark.feature_names_in_) == ["a", "b"]
    assert np.array_equal(on_spark.params, local.params)


def test_column_names_with_dots_and_spaces(spark):
    import pandas as pd

    rng = np.random.default_rng(6)
    frame = pd.DataFrame(
        {"price.usd": rng.standard_normal(300), "units sold": rng.standard_normal(300)}
    )
    frame["y"] = 2.0 * frame["price.usd"] + frame["units sold"] + rng.standard_normal(300)
    local = streamreg.fit(frame, target="y", solver="exact")
    on_spark = streamreg.spark.fit(spark.createDataFrame(frame), target="y", solver="exact")
    assert list(on_spark.feature_names_in_) == ["price.usd", "units sold"]
    assert np.array_equal(on_spark.params, local.params)


def test_bad_input_is_one_clear_sentence(spark, data):
    frame = spark.read.parquet(data["dir"])
    with pytest.raises(SchemaError, match="'nope' is not in the data"):
        streamreg.spark.fit(frame, target="nope")
    with pytest.raises(InputError, match="solver='sgd'"):
        streamreg.spark.fit(frame, target="y", solver="sgd")
    with pytest.raises(InputError, match="solver must be one of"):
        streamreg.spark.fit(frame, target="y", solver="magic")
    with pytest.raises(InputError, match="groups was given"):
        streamreg.spark.fit(frame, target="y", groups="firm")
