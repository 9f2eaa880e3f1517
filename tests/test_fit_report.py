"""The fit report: significant digits, aligned columns, two condition numbers with two names,
and auto's reasons for a second pass (a constant column is none).

Oracles: numpy's least squares and statsmodels' OLS on the same data.
"""

from __future__ import annotations

import inspect
import json
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import streamreg
from streamreg.cli import main
from streamreg.report import coefficient_table


def fit_cli(capsys, path, *args) -> str:
    code = main(["fit", str(path), *map(str, args)])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def table_lines(report: str) -> list[str]:
    lines = report.split("\n\n")[1].splitlines()
    assert lines[0].split()[:3] == ["term", "coefficient", "std"]
    return lines


def write(tmp_path, **columns):
    path = tmp_path / "data.parquet"
    pq.write_table(pa.table(columns), path)
    return path


def test_tiny_coefficients_keep_their_significant_digits(capsys, tmp_path, rng):
    import statsmodels.api as sm

    n = 300
    x = rng.normal(size=n)
    y = 5.0 + 8.99e-9 * x + 1e-12 * rng.normal(size=n)
    report = fit_cli(capsys, write(tmp_path, x=x, y=y), "-y", "y")
    oracle = sm.OLS(y, sm.add_constant(x)).fit()
    row = next(line for line in table_lines(report) if line.split()[0] == "x")
    coefficient, se = float(row.split()[1]), float(row.split()[2])
    assert coefficient == pytest.approx(oracle.params[1], rel=1e-6)  # 7 significant digits
    assert se == pytest.approx(oracle.bse[1], rel=1e-3)  # 4 significant digits
    assert abs(coefficient) < 1e-8 and "0.000000" not in report


def test_large_t_values_keep_the_columns_aligned(capsys, tmp_path, rng):
    import statsmodels.api as sm

    n = 200
    x = rng.normal(size=(n, 2))
    # R² = 1 − 1e-8: the normal equations keep 8 digits of the residual sum of squares.
    y = 1e6 + x @ [1e9, 3e5] + 1e5 * rng.normal(size=n)
    report = fit_cli(capsys, write(tmp_path, a=x[:, 0], b=x[:, 1], y=y), "-y", "y")
    oracle = sm.OLS(y, sm.add_constant(x)).fit()
    assert max(abs(oracle.tvalues)) > 1e4  # the case the issue names
    lines = table_lines(report)
    header = lines[0]
    # The right edge of each numeric column, from the header; every row ends its cells there.
    edges = [m.end() for m in re.finditer(r"coefficient|err|\bt\b|P>\|t\|", header)]
    assert len(edges) == 4
    for line in lines[1:]:
        for edge in edges:
            assert line[edge - 1] != " " and (edge == len(line) or line[edge] == " "), (line, edge)
    for line, t in zip(lines[1:], oracle.tvalues):
        assert float(line.split()[3]) == pytest.approx(t, rel=1e-6, abs=1e-3)


def test_table_widths_follow_their_entries():
    class Stub:  # the attributes the table reads, with extreme values
        fit_intercept = True
        feature_names_in_ = np.array(["a_rather_long_feature_name", "b"], dtype=object)
        use_t = True
        params = np.array([1.0, -123456789.123, np.nan])
        bse = np.array([0.5, 1e-12, np.nan])
        tvalues = np.array([2.0, -1.23456789e17, np.nan])
        pvalues = np.array([0.05, 0.0, np.nan])

    lines = coefficient_table(Stub()).splitlines()
    assert {len(line) for line in lines[:3]} == {len(lines[0])}
    assert "-1.234568e+08" in lines[2] and "-1.235e+17" in lines[2]
    assert lines[3].split() == ["b", "aliased"]


def test_the_two_condition_numbers_have_two_names(capsys, tmp_path, rng):
    import statsmodels.api as sm

    n = 400
    x = 1e3 + rng.normal(size=(n, 2))  # offsets: statsmodels' number is large, ours is not
    y = 2.0 + x @ [1.0, -1.0] + rng.normal(size=n)
    path = write(tmp_path, a=x[:, 0], b=x[:, 1], y=y)
    model = streamreg.fit(path, target="y")
    oracle = sm.OLS(y, sm.add_constant(x)).fit()
    # Both square roots of eigenvalue ratios of the raw XᵀX, whose smallest eigenvalue
    # float64 holds to about κ²·ε: 6 digits at κ ≈ 2e6.
    assert model.condition_number == pytest.approx(oracle.condition_number, rel=1e-5)
    assert model.scaled_condition_number_ < 10 < 1e6 < oracle.condition_number
    report = fit_cli(capsys, path, "-y", "y")
    assert f"scaled condition number {model.scaled_condition_number_:.3g} " in report
    assert "  condition number" not in report
    data = json.loads(fit_cli(capsys, path, "-y", "y", "--json"))
    assert data["scaled_condition_number"] == model.scaled_condition_number_
    assert "condition_number" not in data  # the file's ambiguous top-level name
    assert data["inference"]["condition_number"] == pytest.approx(oracle.condition_number, 1e-6)
    summary = model.summary()
    assert f"{oracle.condition_number:.3e}" in summary
    assert "scaled condition number (of the centered, scaled normal equations) is " in summary


def test_a_constant_column_is_aliased_without_a_second_pass(rng):
    n = 300
    x = rng.normal(size=n)
    y = 1.0 + 2.0 * x + rng.normal(size=n)
    frame = pd.DataFrame({"x": x, "c": np.full(n, 3.25), "y": y})
    model = streamreg.fit(frame, target="y", drop_collinear=True)
    assert model.solver_ == "cholesky"  # auto kept its first pass
    assert model.warnings_ == ["dropped as collinear (no coefficient): c."]
    assert model.aliased_ == ["c"]
    expected = np.linalg.lstsq(np.column_stack([np.ones(n), x]), y, rcond=None)[0]
    np.testing.assert_allclose([model.intercept_, model.coef_[0]], expected, rtol=1e-12)
    with pytest.raises(streamreg.CollinearityError, match="column 'c' is constant"):
        streamreg.fit(frame, target="y")
    through_origin = pd.DataFrame({"x": x, "zero": np.zeros(n), "y": y})
    model = streamreg.fit(through_origin, target="y", fit_intercept=False, drop_collinear=True)
    assert model.solver_ == "cholesky" and model.aliased_ == ["zero"]
    assert not any("condition number" in w for w in model.warnings_)


def test_a_nearly_collinear_column_still_gets_a_second_pass_and_says_why(rng):
    n = 500
    x1 = rng.normal(size=n)
    frame = pd.DataFrame({"x1": x1, "x2": x1 + 1e-9 * rng.normal(size=n)})
    frame["y"] = 1 + frame.x1 + frame.x2 + rng.normal(size=n)
    model = streamreg.fit(frame, target="y", drop_collinear=True)
    assert model.solver_ == "exact"
    first = model.warnings_[0]
    assert first.startswith("auto: the cholesky pass found") and "nearly collinear" in first
    assert "1.0e+00" not in first
    frame["x2"] = x1 + 1e-3 * rng.normal(size=n)
    model = streamreg.fit(frame, target="y")
    assert model.solver_ == "exact"
    number = re.search(r"scaled condition number of (\S+),", model.warnings_[0]).group(1)
    assert float(number) > 1e5  # the switch point, AUTO_SWITCH_CONDITION


# ---------------------------------------------------------------------- nulls defaults
def test_the_estimator_and_the_library_document_their_different_nulls_defaults(rng):
    from streamreg.estimator import StreamingLinearRegression

    assert inspect.signature(streamreg.fit).parameters["nulls"].default == "drop"
    assert StreamingLinearRegression().get_params()["nulls"] == "error"
    # Each side's documentation names the other's default.
    assert 'defaults to ``"error"``' in streamreg.fit.__doc__
    assert "differs from :func:`streamreg.fit`" in StreamingLinearRegression.__doc__
    x = rng.normal(size=(50, 2))
    y = x @ [1.0, 2.0] + rng.normal(size=50)
    x[3, 1] = np.nan
    with pytest.raises(ValueError):
        StreamingLinearRegression().fit(x, y)
    model = streamreg.fit(x, y)
    assert model.rows_dropped_ == 1 and model.n_samples_ == 49
    est = StreamingLinearRegression(nulls="drop").fit(x, y)
    np.testing.assert_allclose(est.coef_, model.coef_, rtol=1e-12)
