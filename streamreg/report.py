"""Plain-text reports for people (the CLI prints these; the math never prints)."""

from __future__ import annotations

import csv
import io
import math

import numpy as np

from .errors import InputError, parameter
from .progress import human_bytes


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
        f"covariance {model.cov_type}"
    )
    parts = [head, "", coefficient_table(model, truth), "", stats]
    if saved_to is not None:
        parts.append(f"  model saved to {saved_to}")
    return "\n".join(parts)


def columns_lines(roles: dict | None) -> list[str]:
    """The report's lines about the data's columns (``model.columns_``): the categories, the
    absorbed and cluster columns, and every column skipped, with why."""
    if not roles:
        return []
    by_role: dict[str, list[str]] = {}
    for name, role in roles.items():
        by_role.setdefault(role["role"], []).append(name)
    lines = []
    if by_role.get("category"):
        described = ", ".join(f"{n} ({roles[n]['why']})" for n in by_role["category"])
        lines.append(f"categories: {described}")
    dated = [n for n in by_role.get("feature", []) if " as " in roles[n]["why"]]
    if dated:
        lines.append("read as numbers: " + ", ".join(f"{n} ({roles[n]['why']})" for n in dated))
    for role in ("absorbed", "cluster"):
        if by_role.get(role):
            lines.append(f"{role}: {', '.join(by_role[role])}")
    reasons: dict[str, list[str]] = {}
    for name in by_role.get("skipped", []):
        reasons.setdefault(roles[name]["why"], []).append(name)
    if reasons:
        lines.append(
            "skipped: " + "; ".join(f"{', '.join(names)} ({why})" for why, names in reasons.items())
        )
    return lines


def inspect_report(info: dict) -> str:
    files = info["files"]
    lines = [
        f"{len(files)} file{'s' if len(files) != 1 else ''}, {info['rows']:,} rows, "
        f"{human_bytes(info['bytes'])}"
    ]
    if not info["columns"]:
        return "\n".join([*lines, "  no columns: the files hold no data a fit could use"])
    width = max(len(c["name"]) for c in info["columns"])
    lines.append(f"  {'column':<{width}}  {'type':<14} {'numeric':<8} {'nulls':>10}")
    for col in info["columns"]:
        nulls = "?" if col["nulls"] is None else f"{col['nulls']:,}"
        kind = col["type"] + (" (partition)" if col["partition"] else "")
        lines.append(
            f"  {col['name']:<{width}}  {kind:<14} {'yes' if col['numeric'] else 'no':<8} "
            f"{nulls:>10}"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- summary
_RULE = "=" * 78
_THIN = "-" * 78
# A column whose mean is this many standard deviations away from zero has a
# huge offset (timestamps): worth a word, as SAS prints for its collinearity checks.
OFFSET_WARNING_RATIO = 1e4


def summary_text(model) -> str:
    """A results table in the shape of statsmodels' ``summary()``."""
    title = ("WLS" if model.weight else "OLS") + " Regression Results"
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
        ("Cond. No.:", _g(model.condition_number, 3, sci=True)),
    ]
    lines = [title.center(78), _RULE]
    for (lk, lv), (rk, rv) in zip(left, right):
        lines.append(f"{lk:<20}{lv:>18}   {rk:<22}{rv:>15}")
    lines.append(_RULE)
    stat = "t" if model.use_t else "z"
    # statsmodels widens the name column for long names (x1:C(region)[T.south]): so do we.
    width = max([16, *(len(n) + 1 for n in model.param_names)])
    lines.append(
        f"{'':<{width}}{'coef':>11}{'std err':>11}{stat:>9}"
        f"{f'P>|{stat}|':>9}{'[0.025':>11}{'0.975]':>11}"
    )
    lines.append(_THIN)
    ci = model.conf_int()
    for name, b, se, t, pv, (lo, hi) in zip(
        model.param_names, model.params, model.bse, model.tvalues, model.pvalues, ci
    ):
        if np.isnan(b):
            lines.append(f"{name:<{width}}{'(aliased: collinear, no coefficient)':>62}")
            continue
        lines.append(
            f"{name:<{width}}{_fixed(b)}{_fixed(se)}{t:>9.3f}{pv:>9.3f}{_fixed(lo)}{_fixed(hi)}"
        )
    lines.append(_RULE)
    notes = summary_notes(model)
    if notes:
        lines.append("Notes:")
        lines.extend(f"[{i}] {note}" for i, note in enumerate(notes, 1))
    return "\n".join(lines)


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
        model.param_names, model.params, model.bse, model.tvalues, model.pvalues, model.conf_int()
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
