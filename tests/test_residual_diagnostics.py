"""Residual moments, normality tests and Durbin-Watson from blocks agree with statsmodels.

The oracle is statsmodels' own summary figures (``jarque_bera``, ``omni_normtest``,
``durbin_watson`` of ``results.wresid``) on the same data, to 1e-8; the moments are also
checked against exact rational arithmetic, and the merges against their laws.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest
import statsmodels.api as sm
from second_pass import blocks, fit, fold, statsmodels_fit
from statsmodels.stats.stattools import durbin_watson, jarque_bera, omni_normtest

from streamreg.errors import InputError, ModelFormatError
from streamreg.model.diagnostics import DIAGNOSTIC_NAMES, ResidualDiagnostics, bottom_block
from streamreg.model.diagnostics.durbin_watson import DurbinWatson
from streamreg.model.diagnostics.moments import ResidualMoments


def close(a, b, rtol=1e-8) -> bool:
    """Relative agreement (absolute below 1e-8 for p values near zero)."""
    a, b = float(a), float(b)
    return abs(a - b) <= max(rtol * abs(b), 1e-8 if abs(b) < 1 else 0.0)


def datasets():
    longley = sm.datasets.longley.load_pandas().data
    stack = sm.datasets.stackloss.load_pandas().data
    ccard = sm.datasets.ccard.load_pandas().data
    macro = sm.datasets.macrodata.load_pandas().data
    crime = sm.datasets.statecrime.load_pandas().data
    return {
        "longley": (longley.iloc[:, 1:].to_numpy(), longley["TOTEMP"].to_numpy(), None, True),
        "stackloss": (stack.iloc[:, 1:].to_numpy(), stack["STACKLOSS"].to_numpy(), None, True),
        # statsmodels' own WLS example: weights 1/INCOMESQ
        "ccard-wls": (
            ccard[["AGE", "INCOME", "OWNRENT"]].to_numpy(),
            ccard["AVGEXP"].to_numpy(),
            1.0 / ccard["INCOMESQ"].to_numpy(),
            True,
        ),
        "macro-ordered": (
            macro[["realgdp", "realint", "unemp"]].to_numpy(),
            macro["realinv"].to_numpy(),
            None,
            True,
        ),
        "crime-no-intercept": (
            crime[["poverty", "single", "urban"]].to_numpy(),
            crime["murder"].to_numpy(),
            None,
            False,
        ),
        "crime-weighted": (
            crime[["poverty", "single"]].to_numpy(),
            crime["violent"].to_numpy(),
            crime["urban"].to_numpy() / 100 + 0.1,
            True,
        ),
    }


DATA = datasets()


@pytest.mark.parametrize("name", sorted(DATA))
@pytest.mark.parametrize("count", [1, 3, 7])
@pytest.mark.parametrize("how", ["left", "tree"])
def test_diagnostics_match_statsmodels(name, count, how):
    x, y, w, intercept = DATA[name]
    model = fit(x, y, w, intercept)
    ref = statsmodels_fit(x, y, w, intercept)
    parts = [ResidualDiagnostics.from_array(b.wresid) for b in blocks(model, x, y, w, count)]
    figures = fold(parts, how).mapping()
    jb, jb_p, skew, kurtosis = jarque_bera(ref.wresid)
    omni, omni_p = omni_normtest(ref.wresid)
    expected = {
        "omnibus": omni,
        "omnibus_pvalue": omni_p,
        "skew": skew,
        "kurtosis": kurtosis,
        "durbin_watson": durbin_watson(ref.wresid),
        "jarque_bera": jb,
        "jarque_bera_pvalue": jb_p,
    }
    assert set(figures) == set(DIAGNOSTIC_NAMES)
    for key, value in expected.items():
        assert close(figures[key], value), (figures[key], value)
    assert close(fold(parts, how).ssr, ref.ssr, rtol=1e-12), (fold(parts, how).ssr, ref.ssr)


def test_bottom_block_is_laid_out_as_statsmodels_prints_it():
    x, y, w, intercept = DATA["longley"]
    model = fit(x, y, w, intercept)
    ref = statsmodels_fit(x, y, w, intercept)
    figures = fold(
        [ResidualDiagnostics.from_array(b.wresid) for b in blocks(model, x, y, w, 3)], "left"
    )
    rows = bottom_block(figures.mapping(), ref.condition_number)
    text = str(ref.summary().tables[2])
    for left, left_value, right, right_value in rows:
        assert f"{left}" in text and f"{left_value.strip()}" in text
        assert f"{right}" in text and f"{right_value.strip()}" in text


def test_moments_equal_exact_rational_moments_despite_an_offset(rng):
    # Residual-like values around 1e7 with unit spread: raw power sums would lose every digit.
    r = 1e7 + rng.standard_t(5, size=301)
    exact = [Fraction(float(v)) for v in r]
    n = len(exact)
    mean = sum(exact) / n
    m = [sum((v - mean) ** q for v in exact) for q in (2, 3, 4)]
    skew = float(m[1] / n) / float(m[0] / n) ** 1.5
    kurt = float(m[2] / n) / float(m[0] / n) ** 2
    for count in (1, 3, 7):
        pieces = np.array_split(r, count)
        got = fold([ResidualMoments.from_array(p) for p in pieces], "tree")
        assert got.count == n
        assert got.mean + got.mean_lo == float(mean)
        assert abs(got.m2 - float(m[0])) <= 1e-12 * float(m[0])
        assert abs(got.skew - skew) <= 1e-12 * abs(skew)
        assert abs(got.kurtosis - kurt) <= 1e-12 * kurt


def test_batch_update_equals_merge_of_one_row_summaries(rng):
    r = rng.normal(size=40) * np.linspace(1, 5, 40)
    by_rows = fold([ResidualDiagnostics.from_array(r[i : i + 1]) for i in range(len(r))], "left")
    updated = ResidualDiagnostics.empty()
    for piece in np.array_split(r, 6):
        updated.update(piece)
    whole = ResidualDiagnostics.from_array(r)
    for other in (by_rows, updated):
        for key, value in whole.mapping().items():
            assert close(other.mapping()[key], value, rtol=1e-12), (other.mapping()[key], value)


def test_merge_laws(rng):
    r = rng.laplace(size=90)
    a, b, c = (ResidualDiagnostics.from_array(p) for p in np.split(r, [20, 55]))
    empty = ResidualDiagnostics.empty()
    assert (a + empty) == a and (empty + a) == a
    left, right = (a + b) + c, a + (b + c)
    for key in DIAGNOSTIC_NAMES:
        assert close(left.mapping()[key], right.mapping()[key], rtol=1e-13), key
    # The moments commute; Durbin-Watson is about order, so b + a is the reversed data.
    assert close((b + a).moments.kurtosis, (a + b).moments.kurtosis, rtol=1e-13)
    reversed_rows = np.r_[r[20:55], r[:20]]
    assert close((b + a).durbin_watson.statistic, durbin_watson(reversed_rows), rtol=1e-13)
    assert (b + a).durbin_watson.statistic != (a + b).durbin_watson.statistic


def test_json_round_trip_is_exact(rng):
    d = fold(
        [ResidualDiagnostics.from_array(p) for p in np.array_split(rng.normal(size=50), 4)], "tree"
    )
    again = ResidualDiagnostics.from_dict(json.loads(json.dumps(d.to_dict())))
    assert again == d and again.mapping() == d.mapping()
    broken = d.to_dict()
    broken["durbin_watson"]["count"] = 3
    with pytest.raises(ModelFormatError, match="count"):
        ResidualDiagnostics.from_dict(broken)
    with pytest.raises(ModelFormatError, match="version"):
        ResidualMoments.from_dict({**d.moments.to_dict(), "format_version": 99})


def test_small_and_degenerate_samples_follow_statsmodels():
    seven = np.array([0.3, -1.2, 0.5, 2.0, -0.7, 0.1, -1.0])
    d = ResidualDiagnostics.from_array(seven).mapping()
    assert math.isnan(d["omnibus"]) and math.isnan(d["omnibus_pvalue"])  # omni_normtest: n < 8
    jb, jb_p, skew, kurt = jarque_bera(seven)
    assert close(d["jarque_bera"], jb), (d["jarque_bera"], jb)
    assert close(d["skew"], skew), (d["skew"], skew)
    constant = ResidualMoments.from_array(np.full(10, 2.5))
    assert math.isnan(constant.skew) and math.isnan(constant.kurtosis)
    assert math.isnan(DurbinWatson.empty().statistic)


def test_non_finite_residuals_are_refused_with_a_sentence():
    with pytest.raises(InputError, match="wresid holds NaN"):
        ResidualMoments.from_array([1.0, np.nan])
    with pytest.raises(InputError, match="Durbin-Watson"):
        DurbinWatson.from_array([np.inf, 1.0])
