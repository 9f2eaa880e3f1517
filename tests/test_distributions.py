"""Tail probabilities and quantiles from ``scipy.special`` are ``scipy.stats``' own values.

Oracle: ``scipy.stats`` (``t``, ``norm``, ``f``, ``chi2``) on the same arguments, compared
for equality of every bit (NaN where it gives NaN), over the domain the model uses:
positive degrees of freedom (fractional ones too: Satterthwaite-like df, 1e9 for nearly
normal), statistics from −∞ to ∞ and NaN, probabilities in (0, 1).
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from streamreg import distributions

X = np.array([-np.inf, -50, -3.2, -1e-300, 0.0, 1e-12, 0.5, 1.96, 7.5, 40, 1e10, np.inf, np.nan])
Q = np.array([1e-300, 1e-10, 0.025, 0.5, 0.95, 0.975, 1 - 1e-16, np.nan])
DF = [0.5, 1, 2, 2.5, 10, 97, 1e6, 1e9]


@pytest.mark.parametrize("df", DF)
def test_t_and_chi2_are_scipy_stats_values(df):
    np.testing.assert_array_equal(distributions.t_sf(X, df), stats.t.sf(X, df))
    np.testing.assert_array_equal(distributions.t_ppf(Q, df), stats.t.ppf(Q, df))
    np.testing.assert_array_equal(distributions.chi2_sf(X, df), stats.chi2.sf(X, df))
    for dfd in DF:
        np.testing.assert_array_equal(distributions.f_sf(X, df, dfd), stats.f.sf(X, df, dfd))


def test_normal_is_scipy_stats_values():
    np.testing.assert_array_equal(distributions.norm_sf(X), stats.norm.sf(X))
    np.testing.assert_array_equal(distributions.norm_ppf(Q), stats.norm.ppf(Q))


def test_quantiles_at_zero_and_one():
    assert distributions.t_ppf(0.0, 5) == stats.t.ppf(0.0, 5) == -np.inf
    assert distributions.t_ppf(1.0, 5) == stats.t.ppf(1.0, 5) == np.inf
    assert np.isnan(distributions.t_ppf(-0.1, 5)) and np.isnan(distributions.chi2_sf(1.0, 0))


def test_a_fit_and_its_inference_do_not_import_scipy_stats(tmp_path):
    """p values, intervals, the F test and the residual diagnostics of a fit, in a fresh
    interpreter: scipy.stats (~0.4 s to import) stays out."""
    code = f"""
import sys
import numpy as np, pandas as pd
import streamreg
rng = np.random.default_rng(0)
x = rng.normal(size=(200, 2))
frame = pd.DataFrame({{"a": x[:, 0], "b": x[:, 1], "y": x @ [1.0, 2.0] + rng.normal(size=200)}})
frame.to_parquet(r"{tmp_path / "d.parquet"}")
m = streamreg.fit(r"{tmp_path / "d.parquet"}", target="y", diagnostics=True)
m.pvalues, m.conf_int(), m.f_pvalue, m.diagnostics, m.summary().as_text()
m.get_prediction(frame.head()).summary_frame()
print("scipy.stats" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stdout + out.stderr
