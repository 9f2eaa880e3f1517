"""Agreement with statsmodels: the largest relative difference seen per statistic.

OLS and WLS, with and without intercept, nonrobust and HC0–HC3 at two chunkings,
cluster-robust, plus scikit-learn's diabetes and statsmodels' Longley data — the
cases of ``tests/test_inference.py``, which asserts 1e-8; this prints the worst
difference per statistic.

    python bench/statsmodels_agreement.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import statsmodels.api as sm
from sklearn.datasets import load_diabetes

import streamreg

STATISTICS = [
    "params",
    "bse",
    "tvalues",
    "pvalues",
    "rsquared",
    "rsquared_adj",
    "fvalue",
    "f_pvalue",
    "llf",
    "aic",
    "bic",
    "ssr",
    "scale",
]
COV = "cov_params (on √(VᵢᵢVⱼⱼ))"


def relative(a, b) -> float:
    a, b = np.atleast_1d(np.asarray(a, float)), np.atleast_1d(np.asarray(b, float))
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def compare(worst: dict, model, ref) -> None:
    for name in STATISTICS:
        worst[name] = max(worst.get(name, 0.0), relative(getattr(model, name), getattr(ref, name)))
    ref_cov = ref.cov_params()
    size = np.sqrt(np.outer(np.diag(ref_cov), np.diag(ref_cov)))
    worst[COV] = max(
        worst.get(COV, 0.0), float(np.max(np.abs(model.cov_params() - ref_cov) / size))
    )
    worst["conf_int"] = max(worst.get("conf_int", 0.0), relative(model.conf_int(), ref.conf_int()))


def write(frame: pd.DataFrame, path: Path, row_group_size=None) -> Path:
    pq.write_table(
        pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=row_group_size
    )
    return path


def synthetic_cases(worst: dict, folder: Path) -> None:
    rng = np.random.default_rng(20261127)
    n = 700
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=n) * 3 + 10,
            "b": rng.uniform(-5, 5, size=n),
            "c": rng.exponential(size=n) + 1e4,
            "w": rng.uniform(0.2, 4.0, size=n),
            "g": rng.choice(list("abcdefg"), size=n),
        }
    )
    noise = rng.normal(size=n) * (1 + np.abs(frame["b"]))
    frame["y"] = 3 + 0.5 * frame["a"] - 2 * frame["b"] + 0.1 * frame["c"] + noise
    path = write(frame, folder / "synthetic.parquet", row_group_size=100)
    features = ["a", "b", "c"]
    for weighted in (False, True):
        weight = "w" if weighted else None

        def reference(intercept: bool, weighted: bool = weighted):
            x = frame[features].to_numpy()
            x = sm.add_constant(x) if intercept else x
            return sm.WLS(frame["y"], x, weights=frame["w"]) if weighted else sm.OLS(frame["y"], x)

        for intercept in (True, False):
            for cov in (None, "HC0", "HC1", "HC2", "HC3"):
                for batch_size in (None, 37):
                    model = streamreg.fit(
                        path,
                        target="y",
                        features=features,
                        weight=weight,
                        fit_intercept=intercept,
                        batch_size=batch_size,
                        cov_type=cov,
                    )
                    compare(
                        worst, model, reference(intercept).fit(**({"cov_type": cov} if cov else {}))
                    )
        model = streamreg.fit(
            path, target="y", features=features, weight=weight, cov_type="cluster:g", batch_size=50
        )
        groups = pd.factorize(frame["g"])[0]
        compare(worst, model, reference(True).fit(cov_type="cluster", cov_kwds={"groups": groups}))


def real_data_cases(worst: dict, folder: Path) -> None:
    diabetes = load_diabetes(as_frame=True)
    path = write(diabetes.frame, folder / "diabetes.parquet")
    for cov in (None, "HC3"):
        model = streamreg.fit(path, target="target", batch_size=57, cov_type=cov)
        design = sm.add_constant(diabetes.frame[list(diabetes.feature_names)])
        compare(
            worst,
            model,
            sm.OLS(diabetes.frame["target"], design).fit(**({"cov_type": cov} if cov else {})),
        )
    longley = sm.datasets.longley.load_pandas().data
    path = write(longley, folder / "longley.parquet")
    model = streamreg.fit(path, target="TOTEMP", batch_size=3, solver="qr")
    compare(
        worst,
        model,
        sm.OLS(longley["TOTEMP"], sm.add_constant(longley.drop(columns="TOTEMP"))).fit(),
    )


def main() -> None:
    worst: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        synthetic_cases(worst, Path(tmp))
        real_data_cases(worst, Path(tmp))
    for name, value in worst.items():
        print(f"{name:32s} {value:.1e}")


if __name__ == "__main__":
    main()
