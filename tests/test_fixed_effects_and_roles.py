"""Absorbed fixed effects through the public API (pyfixest to 1e-8), and what every column of the
data became in a fit (roles: nothing vanishes silently; partition keys and ID-like columns are
not default features)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from modellang import assert_close

import streamreg
from streamreg.errors import InputError

pf = pytest.importorskip("pyfixest")


@pytest.fixture(scope="module")
def panel():
    rng = np.random.default_rng(11)
    n, firms = 3000, 150
    firm = rng.integers(0, firms, n)
    effect = rng.normal(scale=5.0, size=firms) + 1e4 * (np.arange(firms) % 3)
    frame = pd.DataFrame(
        {
            "firm": firm,
            "year": rng.integers(2000, 2010, n),
            "x1": rng.normal(size=n) + 0.1 * effect[firm] / 1e4,
            "x2": rng.uniform(0, 3, n),
            "sector": np.asarray(["a", "b", "c", "d"])[firm % 4],
            "w": rng.uniform(0.5, 2.0, n),
        }
    )
    frame["y"] = 1.5 * frame.x1 - 0.7 * frame.x2 + effect[firm] + rng.normal(size=n)
    frame["z"] = frame.y * 0.5 + rng.normal(size=n)
    # a few singleton firms, which pyfixest drops
    singles = pd.DataFrame(
        {
            "firm": [1000, 1001],
            "year": [2000, 2001],
            "x1": [0.3, -0.2],
            "x2": [1.0, 2.0],
            "sector": ["a", "b"],
            "w": [1.0, 1.0],
            "y": [2.0, 3.0],
            "z": [1.0, 1.5],
        }
    )
    return pd.concat([frame, singles], ignore_index=True)


def as_files(frame, folder, parts=4):
    folder.mkdir(parents=True, exist_ok=True)
    for i, rows in enumerate(np.array_split(np.arange(len(frame)), parts)):
        table = pa.Table.from_pandas(frame.iloc[rows], preserve_index=False)
        pq.write_table(table, folder / f"part-{i}.parquet", row_group_size=250)
    return folder


def assert_as_pyfixest(model, ref, rtol=1e-8):
    assert model.param_names == list(ref.coef().index)
    assert_close(model.params, ref.coef().values, rtol, "coef")
    assert_close(model.bse, ref.se().values, rtol, "se")
    assert_close(model.tvalues, ref.tstat().values, rtol, "t")
    np.testing.assert_allclose(model.pvalues, ref.pvalue().values, rtol=1e-6, atol=1e-12)
    assert model.nobs == ref._N


@pytest.mark.parametrize(
    "vcov, cov_type",
    [("iid", None), ({"CRV1": "firm"}, "cluster:firm"), ({"CRV1": "sector"}, "cluster:sector")],
)
@pytest.mark.parametrize("batch_size", [97, 100_000])
def test_absorbed_factor_agrees_with_pyfixest(panel, tmp_path, vcov, cov_type, batch_size):
    folder = as_files(panel, tmp_path / "p")
    ref = pf.feols("y ~ x1 + x2 | firm", panel, vcov=vcov)
    model = streamreg.fit(
        folder, formula="y ~ x1 + x2 | firm", cov_type=cov_type, batch_size=batch_size
    )
    assert_as_pyfixest(model, ref)
    same = streamreg.fit(
        folder, target="y", features=["x1", "x2"], absorb="firm", cov_type=cov_type
    )
    assert_close(same.bse, model.bse, 1e-12)
    assert model.absorbed_ == {"column": "firm", "n_groups": 150, "singletons": 2}
    assert model.columns_["firm"]["role"] == "absorbed"


def test_weighted_and_with_categories(panel):
    ref = pf.feols("y ~ x1 + C(year) | firm", panel, weights="w")
    model = streamreg.fit(panel, formula="y ~ x1 + C(year) | firm", weight="w")
    # Terms in patsy's order (categories first), as statsmodels names them; pyfixest keeps
    # the written order.
    assert sorted(model.param_names) == sorted(ref.coef().index)
    assert_close(model.params, ref.coef()[model.param_names], 1e-8)
    assert_close(model.bse, ref.se()[model.param_names], 1e-8)


def test_absorbed_model_saves_but_does_not_predict(panel, tmp_path):
    model = streamreg.fit(panel, formula="y ~ x1 + x2 | firm")
    model.save(tmp_path / "m.json")
    loaded = streamreg.load(tmp_path / "m.json")
    np.testing.assert_array_equal(loaded.bse, model.bse)
    assert loaded.absorbed_ == model.absorbed_
    with pytest.raises(InputError, match="does not keep; it has slopes but no predictions"):
        loaded.predict(panel)


def test_several_targets_with_an_absorbed_factor(panel):
    both = streamreg.fit(panel, formula="y + z ~ x1 + x2 | firm")
    for target in ("y", "z"):
        ref = pf.feols(f"{target} ~ x1 + x2 | firm", panel)
        assert_close(both[target].params, ref.coef().values, 1e-8)
        assert_close(both[target].bse, ref.se().values, 1e-8)


def test_absorbing_refuses_what_it_cannot_do(panel):
    with pytest.raises(InputError, match="iid or clustered"):
        streamreg.fit(panel, formula="y ~ x1 | firm", cov_type="HC1")
    with pytest.raises(InputError, match="alternating projections"):
        streamreg.fit(panel, formula="y ~ x1 | firm + year")
    with pytest.raises(InputError, match="already centers every column"):
        streamreg.fit(panel, formula="y ~ center(x1) | firm")


# ---------------------------------------------------------------------- roles
def test_every_column_has_a_stated_role(tmp_path, rng):
    root = tmp_path / "events"
    for month in (1, 2, 3):
        n = 40
        table = pa.table(
            {
                "user_id": np.arange(n) + 100 * month,
                "x": rng.normal(size=n),
                "city": rng.choice(["a", "b"], n),
                "ts": pa.array(np.arange(n) * 10**6, pa.timestamp("us")),
                "tags": pa.array([[1, 2]] * n),
                "y": rng.normal(size=n),
            }
        )
        (root / f"month={month}" / "region=eu").mkdir(parents=True)
        pq.write_table(table, root / f"month={month}" / "region=eu" / "part.parquet")
    model = streamreg.fit(root, target="y")
    roles = model.columns_
    assert list(model.feature_names_in_) == ["x"]
    assert set(roles) == {"user_id", "x", "city", "ts", "tags", "y", "month", "region"}
    assert roles["y"]["role"] == "target" and roles["x"]["role"] == "feature"
    why = {name: roles[name]["why"] for name in roles if roles[name]["role"] == "skipped"}
    assert "ID-like" in why["user_id"]
    assert "Hive partition key" in why["month"] and "as a number" in why["month"]
    assert "Hive partition key holding text" in why["region"]
    assert "text" in why["city"] and "category" in why["city"]
    assert "seconds since 1970-01-01" in why["ts"]
    assert "cannot be a feature" in why["tags"]
    named = streamreg.fit(root, target="y", features=["x", "month", "city"])
    assert list(named.feature_names_in_) == ["x", "month", "city[T.b]"]
    assert named.columns_["user_id"] == {"role": "skipped", "why": "not among the features"}


def test_fit_report_and_json_state_every_column(tmp_path, rng):
    from typer.testing import CliRunner

    from streamreg.cli import app

    n = 60
    path = tmp_path / "d.parquet"
    pq.write_table(
        pa.table(
            {
                "id": np.arange(n),
                "x": rng.normal(size=n),
                "name": rng.choice(["p", "q"], n),
                "y": rng.normal(size=n),
            }
        ),
        path,
    )
    runner = CliRunner()
    result = runner.invoke(app, ["fit", str(path), "-y", "y"])
    assert result.exit_code == 0, result.output
    assert "skipped: id (ID-like" in result.stdout and "name (text" in result.stdout
    report = json.loads(runner.invoke(app, ["fit", str(path), "-y", "y", "--json"]).stdout)
    assert {k: v["role"] for k, v in report["columns"].items()} == {
        "id": "skipped",
        "x": "feature",
        "name": "skipped",
        "y": "target",
    }
    repeated = runner.invoke(app, ["fit", str(path), "-y", "y", "-x", "x", "-x", "name", "--json"])
    assert json.loads(repeated.stdout)["features"] == ["x", "name[T.q]"]
