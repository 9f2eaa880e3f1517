"""The NIST StRD tables: digits (min LRE) of every certified value, by solver, next to statsmodels.

Each data set is written to Parquet and streamed in batches of 7 rows, as in
``tests/test_nist_solvers.py`` and ``tests/test_nist_inference.py`` (which assert the targets;
this prints the numbers). Two tables:

1. the parameters by solver, next to numpy's ``lstsq`` and the float64 ceiling;
2. the inference — parameter standard deviations (SE), residual standard deviation (SD) and
   R² — of the default solver (``auto``, with the residual pass when its SSR lost digits),
   of the exact solver, and of statsmodels' ``OLS`` on the same float64 data, under the
   *ceiling*: the LRE of the exact statistics of the float64 data, rounded once (a value
   can only beat it by luck, as statsmodels' residual SD does on Wampler3 by 0.1).

    python bench/nist_table.py
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import statsmodels.api as sm

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from oracles import nist  # noqa: E402
from oracles.rational import exact_statistics  # noqa: E402

import streamreg  # noqa: E402


def fitted(path: Path, case, solver: str):
    try:
        return streamreg.fit(
            path, target="y", fit_intercept=case.fit_intercept, batch_size=7, solver=solver
        )
    except streamreg.StreamregError:
        return None


def params_score(model, case) -> str:
    if model is None:
        return "refused"
    est = np.r_[model.intercept_, model.coef_] if case.fit_intercept else model.coef_
    return f"{nist.lre(est, case.params):.1f}"


def inference_scores(params, bse, resid_sd, r2, case) -> list[float]:
    return [
        nist.lre(params, case.params),
        nist.lre(bse, case.param_sd),
        nist.lre(resid_sd, case.residual_sd),
        nist.lre(r2, case.r_squared),
    ]


def model_scores(model, case) -> list[float]:
    return inference_scores(
        model.params.to_numpy(), model.bse.to_numpy(), model.resid_std, model.rsquared, case
    )


def statsmodels_scores(case) -> list[float]:
    exog = sm.add_constant(case.x, has_constant="add") if case.fit_intercept else case.x
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels calls Filip's design rank-deficient
        ref = sm.OLS(case.y, exog).fit()
    return inference_scores(ref.params, ref.bse, np.sqrt(ref.scale), ref.rsquared, case)


def cells(scores: list[float]) -> str:
    return " ".join(f"{s:>4.1f}" for s in scores)


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        print("1. Parameters (min LRE), 7-row batches")
        print(
            f"{'dataset':<10}{'ceiling':>8}{'numpy':>7}  "
            f"{'auto':<16}{'cholesky':>9}{'qr':>7}{'exact':>7}"
        )
        for name in nist.NAMES:
            case = nist.load(name)
            path = Path(tmp) / f"{name}.parquet"
            columns = {n: case.x[:, j] for j, n in enumerate(case.feature_names)}
            pq.write_table(pa.table({**columns, "y": case.y}), path)
            models = {s: fitted(path, case, s) for s in ("auto", "cholesky", "qr", "exact")}
            auto = params_score(models["auto"], case) + f" ({models['auto'].solver_})"
            print(
                f"{name:<10}{nist.CEILING[name]:>8}{nist.NUMPY_LSTSQ[name]:>7}  {auto:<16}"
                f"{params_score(models['cholesky'], case):>9}"
                f"{params_score(models['qr'], case):>7}{params_score(models['exact'], case):>7}"
            )
            exact = exact_statistics(case.x, case.y, case.fit_intercept)
            ceiling = inference_scores(
                exact["params"], exact["param_sd"], exact["residual_sd"], exact["r_squared"], case
            )
            rows.append(
                (
                    name,
                    ceiling,
                    model_scores(models["auto"], case),
                    model_scores(models["exact"], case),
                    statsmodels_scores(case),
                )
            )
    print()
    print("2. Inference (min LRE): params, SE (parameter SDs), SD (residual SD), R²")
    head = "par   SE   SD   R²"
    print(f"{'dataset':<10}{'ceiling':<21}{'auto (default)':<21}{'exact':<21}{'statsmodels':<21}")
    print(f"{'':<10}{head:<21}{head:<21}{head:<21}{head:<21}")
    for name, ceiling, auto, exact, ref in rows:
        print(f"{name:<10}{cells(ceiling):<21}{cells(auto):<21}{cells(exact):<21}{cells(ref):<21}")


if __name__ == "__main__":
    main()
