"""Plain-text reports for people (the CLI prints these; the math never prints)."""

from __future__ import annotations

import csv
import io
import math

import numpy as np

from .choices import DIAGNOSTIC_NAMES
from .data_report import columns_lines
from .errors import InputError, parameter


def coefficient_table(model, truth: dict | None = None) -> str:
    """Intercept and coefficients with standard errors and tests, one per line (and the
    true values when known).

    Numbers keep their significant digits (7 for a coefficient, 4 for a standard error,
    3 for a p value; t to 3 decimals, in scientific notation from 10⁶ on), so 8.99e-09 is
    not printed as 0.000000; each column is as wide as its widest entry, so large t values
    keep the columns aligned."""
    names = (["(intercept)"] if model.fit_intercept else []) + [
        str(n) for n in model.feature_names_in_
    ]
    stat = "t" if model.use_t else "z"
    header = ["term", "coefficient", "std err", stat, f"P>|{stat}|"]
    if truth is not None:
        header.append("truth")
    rows = []
    with np.errstate(all="ignore"):
        for name, value, se, t, pv in zip(
            names, model.params, model.bse, model.tvalues, model.pvalues
        ):
            if np.isnan(value):
                row = [name, "aliased", "", "", ""]
            else:
                row = [name, _sig(value, 7), _sig(se, 4), _t_value(t), _sig(pv, 3)]
            if truth is not None:
                true = (
                    truth.get("intercept")
                    if name == "(intercept)"
                    else truth.get("coef", {}).get(name)
                )
                row.append(_sig(true, 4) if true is not None else "")
            rows.append(row)
    widths = [max(len(r[j]) for r in [header, *rows]) for j in range(len(header))]

    def line(cells: list[str]) -> str:
        first = f"  {cells[0]:<{widths[0]}}"
        return first + "".join(f"  {c:>{w}}" for c, w in zip(cells[1:], widths[1:])).rstrip()

    return "\n".join(line(r) for r in [header, *rows])


def _sig(value: float, digits: int) -> str:
    """``value`` to ``digits`` significant digits (``8.99e-09``, ``2.058024``, ``1.002058e+09``)."""
    return f"{value:.{digits}g}"


def _t_value(value: float) -> str:
    return f"{value:.3f}" if abs(value) < 1e6 or not math.isfinite(value) else f"{value:.3e}"


def fit_report(
    model, *, seconds: float | None = None, saved_to=None, truth: dict | None = None
) -> str:
    if hasattr(model, "models_"):  # several targets: one report each, from one pass
        parts = [fit_report(m, seconds=seconds, truth=truth) for m in model.models_]
        text = "\n\n".join(parts)
        return text + (f"\n  model saved to {saved_to}" if saved_to is not None else "")
    terms = " + ".join(str(n) for n in model.feature_names_in_)
    absorbed = getattr(model, "absorbed_", None)
    files = len(model.inputs_)
    shape = (
        f" | {absorbed['column']}"
        if absorbed
        else ("" if model.fit_intercept else " (no intercept)")
    )
    head = (
        f"{model.target} ~ {terms}{shape}\n"
        f"{model.n_samples_:,} rows used from {files} file{'s' if files != 1 else ''}"
    )
    if model.weight:
        head += f", weighted by {model.weight} (Σw = {model.weight_sum_:.6g})"
    if model.rows_dropped_:
        detail = ", ".join(f"{k}: {v:,}" for k, v in model.rows_dropped_by_column_.items())
        head += f"; {model.rows_dropped_:,} rows dropped for missing values ({detail})"
    if seconds is not None:
        head += f"; {seconds:.1f} s"
    if absorbed:
        head += (
            f"\nfixed effect {absorbed['column']} absorbed: {absorbed['n_groups']:,} groups"
            + (
                f", {absorbed['singletons']:,} singleton groups dropped"
                if absorbed["singletons"]
                else ""
            )
            + "; R² is the within R²"
        )
    for line in columns_lines(getattr(model, "columns_", None)):
        head += f"\n{line}"
    stats = (
        f"  R² {model.r2_:.6f}   adj. R² {model.rsquared_adj:.6f}   RMSE {model.rmse_:.6g}   "
        f"F {model.fvalue:.4g} (p {model.f_pvalue:.3g})\n"
        f"  scaled condition number {model.scaled_condition_number_:.3g}   "
        f"solver {model.solver_}   "
        f"covariance {_covariance_label(model)}"
    )
    parts = [head, "", coefficient_table(model, truth), "", stats]
    line = diagnostics_line(model)
    if line is not None:
        parts.append(line)
    if saved_to is not None:
        parts.append(f"  model saved to {saved_to}")
    return "\n".join(parts)


def diagnostics_line(model) -> str | None:
    """The fit report's line of residual diagnostics (None when the fit has none)."""
    d = getattr(model, "diagnostics", None)
    if not d:
        return None
    return (
        f"  Durbin-Watson {d['durbin_watson']:.3f}   Jarque-Bera {d['jarque_bera']:.4g} "
        f"(p {d['jarque_bera_pvalue']:.3g})   Omnibus {d['omnibus']:.4g} "
        f"(p {d['omnibus_pvalue']:.3g})   skew {d['skew']:.3f}   kurtosis {d['kurtosis']:.3f}"
    )


def _covariance_label(model) -> str:
    robust = model.robust_ or {}
    if robust.get("cov_type") == "HAC":
        return f"HAC ({robust.get('maxlags')} lags)"
    if isinstance(robust.get("groups"), list):
        return "cluster (" + ", ".join(robust["groups"]) + ")"
    return model.cov_type


# --------------------------------------------------------------------------- summary
_RULE = "=" * 78
_THIN = "-" * 78
# A column whose mean is this many standard deviations away from zero has a
# huge offset (timestamps): worth a word, as SAS prints for its collinearity checks.
OFFSET_WARNING_RATIO = 1e4


def summary_text(model) -> str:
    """A results table in the shape of statsmodels' ``summary()``."""
    tables = summary_tables(model)
    lines = [tables["title"].center(78), _RULE]
    for (lk, lv), (rk, rv) in tables["top"]:
        lines.append(f"{lk:<20}{lv:>18}   {rk:<22}{rv:>15}")
    lines.append(_RULE)
    stat = tables["header"][3]
    # statsmodels widens the name column for long names (x1:C(region)[T.south]): so do we.
    width = max([16, *(len(n) + 1 for n in model.param_names)])
    lines.append(
        f"{'':<{width}}{'coef':>11}{'std err':>11}{stat:>9}"
        f"{f'P>|{stat}|':>9}{'[0.025':>11}{'0.975]':>11}"
    )
    lines.append(_THIN)
    for name, cells in zip(model.param_names, tables["rows"]):
        if cells[1] == "aliased":
            lines.append(f"{name:<{width}}{'(aliased: collinear, no coefficient)':>62}")
            continue
        b, se, t, pv, lo, hi = cells[1:]
        lines.append(f"{name:<{width}}{b:>11}{se:>11}{t:>9}{pv:>9}{lo:>11}{hi:>11}")
    lines.append(_RULE)
    if tables["bottom"]:
        lines += [*bottom_lines(tables["bottom"]), _RULE]
    notes = tables["notes"]
    if notes:
        lines.append("Notes:")
        lines.extend(f"[{i}] {note}" for i, note in enumerate(notes, 1))
    return "\n".join(lines)


def summary_tables(model) -> dict:
    """The content of ``summary()``: title, the top pairs, the coefficient table (header and
    formatted rows), statsmodels' bottom block (empty without ``model.diagnostics``), notes."""
    title = ("WLS" if model.weight else "OLS") + " Regression Results"
    diagnostics = getattr(model, "diagnostics", None)
    left = [
        ("Dep. Variable:", model.target),
        ("Model:", "WLS" if model.weight else "OLS"),
        ("Method:", "Least Squares"),
        ("No. Observations:", f"{model.nobs:.0f}"),
        ("Df Residuals:", f"{model.df_resid:.0f}"),
        ("Df Model:", f"{model.df_model:.0f}"),
        ("Covariance Type:", model.cov_type),
        ("Solver:", model.solver_),
    ]
    right = [
        (
            "R-squared" + ("" if model.fit_intercept else " (uncentered)") + ":",
            _g(model.rsquared, 3),
        ),
        ("Adj. R-squared:", _g(model.rsquared_adj, 3)),
        ("F-statistic:", _g(model.fvalue, 4)),
        ("Prob (F-statistic):", _g(model.f_pvalue, 3, sci=True)),
        ("Log-Likelihood:", _g(model.llf, 5)),
        ("AIC:", _g(model.aic, 4)),
        ("BIC:", _g(model.bic, 4)),
        # With the bottom block the condition number is printed there, as statsmodels does.
        ("", "") if diagnostics else ("Cond. No.:", _g(model.condition_number, 3, sci=True)),
    ]
    stat = "t" if model.use_t else "z"
    header = ["", "coef", "std err", stat, f"P>|{stat}|", "[0.025", "0.975]"]
    rows = []
    with np.errstate(all="ignore"):
        ci = model._conf_int()
        for name, b, se, t, pv, (lo, hi) in zip(
            model.param_names, model._params, model._bse, model._tvalues, model._pvalues, ci
        ):
            if np.isnan(b):
                rows.append([name, "aliased", "", "", "", "", ""])
                continue
            rows.append(
                [name, *(_fixed(v).strip() for v in (b, se)), f"{t:.3f}", f"{pv:.3f}"]
                + [_fixed(v).strip() for v in (lo, hi)]
            )
    bottom = []
    if diagnostics:
        bottom = [
            ((lk, lv.strip()), (rk, rv.strip()))
            for lk, lv, rk, rv in bottom_block(diagnostics, model.condition_number)
        ]
    return {
        "title": title,
        "top": list(zip(left, right)),
        "header": header,
        "rows": rows,
        "bottom": bottom,
        "notes": summary_notes(model),
    }


def bottom_lines(bottom) -> list[str]:
    """The bottom block's rows as text, in statsmodels' columns (37 + 3 + 38 characters)."""
    return [f"{lk}{lv:>{37 - len(lk)}}   {rk}{rv:>{38 - len(rk)}}" for (lk, lv), (rk, rv) in bottom]


def bottom_block(
    diagnostics: dict[str, float], condition_number: float
) -> list[tuple[str, str, str, str]]:
    """Four rows ``(left label, left value, right label, right value)`` formatted as
    statsmodels' ``RegressionResults.summary()`` formats them."""
    names = DIAGNOSTIC_NAMES
    d = {name: float(diagnostics.get(name, math.nan)) for name in names}
    return [
        ("Omnibus:", f"{d['omnibus']:#6.3f}", "Durbin-Watson:", f"{d['durbin_watson']:#8.3f}"),
        (
            "Prob(Omnibus):",
            f"{d['omnibus_pvalue']:#6.3f}",
            "Jarque-Bera (JB):",
            f"{d['jarque_bera']:#8.3f}",
        ),
        ("Skew:", f"{d['skew']:#6.3f}", "Prob(JB):", f"{d['jarque_bera_pvalue']:#8.3g}"),
        ("Kurtosis:", f"{d['kurtosis']:#6.3f}", "Cond. No.", f"{condition_number:#8.3g}"),
    ]


def summary_notes(model) -> list[str]:
    if model.cov_type == "nonrobust":
        notes = [
            "Standard Errors assume that the covariance matrix of the errors is correctly "
            "specified."
        ]
    elif model.cov_type == "cluster":
        groups = (model.robust_ or {}).get("n_groups")
        notes = [f"Standard Errors are robust to cluster correlation (cluster), {groups} clusters."]
    else:
        notes = [f"Standard Errors are heteroscedasticity robust ({model.cov_type})."]
    absorbed = getattr(model, "absorbed_", None)
    if absorbed:
        notes.append(
            f"Fixed effect '{absorbed['column']}' absorbed ({absorbed['n_groups']:,} groups, "
            f"{absorbed['singletons']:,} singleton groups dropped); R-squared is the within "
            "R-squared."
        )
    notes.append(
        "The scaled condition number (of the centered, scaled normal equations) is "
        f"{model.scaled_condition_number_:.3g}; Cond. No. above is statsmodels' condition "
        "number of the raw design."
    )
    notes.extend(offset_warnings(model))
    notes.extend(model.warnings_)
    if getattr(model, "diagnostics", None) is None:
        notes.append(
            "Residual diagnostics (Omnibus, Durbin-Watson, Jarque-Bera) need a second pass over "
            f"the data: fit with {parameter('diagnostics', True)}."
        )
    return notes


def offset_warnings(model) -> list[str]:
    state = model.state_
    p = len(model.feature_names_in_)
    out = []
    mean = state.mean + state.mean_lo
    diag = np.diagonal(state.comoment)[:p]
    for j, name in enumerate(model.feature_names_in_):
        sd = math.sqrt(max(diag[j], 0.0) / state.weight_sum) if state.weight_sum else 0.0
        if sd > 0 and abs(mean[j]) > OFFSET_WARNING_RATIO * sd:
            out.append(
                f"column '{name}' has mean {mean[j]:.6g} but standard deviation {sd:.3g}: a huge "
                "offset. "
                "streamreg centers internally so no digits are lost, but the intercept is an "
                "extrapolation far outside the data; consider subtracting a reference value."
            )
    return out


def summary_markdown(model) -> str:
    head = (
        f"**{'WLS' if model.weight else 'OLS'}: {model.target}** — n = {model.nobs:.0f}, "
        f"R² = {_g(model.rsquared, 4)}, adj. R² = {_g(model.rsquared_adj, 4)}, "
        f"F = {_g(model.fvalue, 4)} (p = {_g(model.f_pvalue, 3, sci=True)}), "
        f"covariance {model.cov_type}, solver {model.solver_}"
    )
    stat = "t" if model.use_t else "z"
    rows = [
        f"| term | coef | std err | {stat} | P>\\|{stat}\\| | [0.025 | 0.975] |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, b, se, t, pv, (lo, hi) in zip(
        model.param_names,
        model._params,
        model._bse,
        model._tvalues,
        model._pvalues,
        model._conf_int(),
    ):
        if np.isnan(b):
            rows.append(f"| {name} | aliased | | | | | |")
        else:
            rows.append(
                f"| {name} | {b:.6g} | {se:.4g} | {t:.3f} | {pv:.3g} | {lo:.6g} | {hi:.6g} |"
            )
    notes = "\n".join(f"- {n}" for n in summary_notes(model))
    return f"{head}\n\n" + "\n".join(rows) + f"\n\n{notes}\n"


def summary_json(model) -> dict:
    data = model.inference_dict()
    data.update(
        {
            "target": model.target,
            "param_names": model.param_names,
            "solver": model.solver_,
            "weight": model.weight,
            "notes": summary_notes(model),
        }
    )
    diagnostics = getattr(model, "diagnostics", None)
    if diagnostics is not None:
        data["diagnostics"] = {
            name: (v if math.isfinite(v) else None) for name, v in diagnostics.items()
        }
    return data


def _g(value, digits: int, sci: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "nan" if value != value else ("inf" if value and value > 0 else "-inf")
    return f"{value:.{digits}e}" if sci else f"{value:#.{digits}g}"


def _fixed(value: float) -> str:
    """statsmodels prints %.4f; beyond its range, scientific notation keeps the digits."""
    if value == 0 or 1e-4 <= abs(value) < 1e6:
        return f"{value:>11.4f}"
    return f"{value:>11.3e}"


# --------------------------------------------------------------------------- gradient solvers
def optimizer_line(model) -> str | None:
    """One line about the optimization, for the CLI's report (None for closed-form solvers)."""
    record = getattr(model, "optimizer_", None)
    if not record:
        return None
    unit = "epoch" if record["solver"] == "sgd" else "iteration"
    n = record["iterations"]
    held = f", {record['holdout_rows']:,} rows held out" if record["holdout_rows"] else ""
    status = "converged" if record["converged"] else "NOT converged"
    steps = record["steps"]
    return (
        f"  {record['solver']}: {n} {unit}{'s' if n != 1 else ''}, {steps:,} "
        f"step{'s' if steps != 1 else ''}, "
        f"{record['passes']} passes over the data{held}; {status}: {record['stop_reason']}"
    )


def history_csv(model, *, steps: bool = False) -> str:
    """The per-epoch (or per-step) history as CSV text."""
    record = getattr(model, "optimizer_", None)
    if not record:
        raise InputError(
            f"the model was fitted with solver '{model.solver_}', which keeps no loss "
            "history (only the gradient solvers sgd, newton and lbfgs do)."
        )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if steps:
        losses = record.get("step_loss")
        if losses is None:
            raise InputError(
                f"the per-step history was not recorded ({parameter('record_steps', True)})."
            )
        writer.writerow(["step", "minibatch_loss"])
        writer.writerows((i + 1, repr(v)) for i, v in enumerate(losses))
        return out.getvalue()
    history = record["history"]
    keys = [
        k
        for k in ("iteration", "loss", "gradient_norm", "validation_loss", "learning_rate")
        if history.get(k) is not None
    ]
    writer.writerow(keys)
    for row in zip(*(history[k] for k in keys)):
        writer.writerow(["" if v is None else repr(v) for v in row])
    return out.getvalue()


# --------------------------------------------------------------------------- jobs
def job_report(result) -> str:
    if result.status == "nothing new":
        return (
            f"Nothing new: {result.files_total:,} files ({result.rows_total:,} rows) ingested, "
            "none changed."
        )
    if result.status == "stopped":
        return (
            f"Stopped after ingesting {len(result.files_ingested):,} files; the file in hand is "
            "checkpointed and the next run continues it."
        )
    if result.status == "no data":
        return (
            getattr(result, "message", "")
            or "No files are left in the model; nothing was published."
        )
    return (
        f"Ingested {len(result.files_ingested):,} files ({result.rows:,} rows, "
        f"{result.rows_dropped:,} dropped) "
        f"in {result.seconds:.1f} s; published model version {result.model_version} over "
        f"{result.files_total:,} files ({result.rows_total:,} rows) to {result.model_path}."
    )


def dry_run_report(result) -> str:
    plan = result.plan
    lines = []
    new = [f for f in plan.new]
    if new:
        rows = sum(result.new_rows.get(f.path, 0) for f in new)
        lines.append(f"Would ingest {len(new):,} new files ({rows:,} rows):")
        lines += [f"  {f.path}  {result.new_rows.get(f.path, 0):,} rows" for f in new]
    if plan.changed:
        lines.append(
            f"Changed since ingested ({len(plan.changed):,}; an error unless --on-change replace):"
        )
        lines += [f"  {f.path}" for f, _ in plan.changed]
    if plan.expired:
        lines.append(f"Would subtract {len(plan.expired):,} files that left the window:")
        lines += [f"  {e['url']}" for e in plan.expired]
    if plan.outside_window:
        lines.append(f"Outside the window, not ingested: {len(plan.outside_window):,} files.")
    if plan.vanished:
        lines.append(f"No longer listed (their rows stay): {len(plan.vanished):,} files.")
    if plan.republish and not (new or plan.changed or plan.expired):
        lines.append(
            "Would publish the model again (the last published one is missing or out of date)."
        )
    if not lines or plan.nothing_new:
        lines.append(
            f"Nothing new: {result.files_total:,} files ({result.rows_total:,} rows) ingested, "
            "none changed."
        )
    return "\n".join(lines)
