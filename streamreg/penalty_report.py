"""Plain-text reports of penalized fits and cross-validated paths (the CLI prints these).

Everything comes from the model: its coefficients, ``penalty_`` and, when
cross-validation chose the penalty, ``cv_`` (the path's figures are stored there, so a
saved model reports the same table). A penalized model has no standard errors and no p
values; :data:`NO_P_VALUES` says why, in every summary.
"""

from __future__ import annotations

import csv
import io
import math

NO_P_VALUES = (
    "No standard errors, t statistics, p values or confidence intervals: the penalty "
    "shrinks the estimates toward zero (they are biased), and once alpha or the variables "
    "are chosen from the same data the textbook sampling distribution no longer holds. For "
    "inference, refit least squares on the selected columns with fresh data, or bootstrap."
)
_RULE = "=" * 78
_THIN = "-" * 78


def penalty_words(penalty: dict) -> str:
    """'lasso', 'ridge' or 'elastic net (l1_ratio 0.5)', and 'standardized' when it is."""
    ratio = penalty["l1_ratio"]
    kind = {0.0: "ridge", 1.0: "lasso"}.get(float(ratio), f"elastic net (l1_ratio {ratio:g})")
    return kind + (", standardized" if penalty["standardize"] else "")


def _terms(model) -> list[tuple[str, float]]:
    names = (["Intercept"] if model.fit_intercept else []) + [
        str(n) for n in model.feature_names_in_
    ]
    values = ([model.intercept_] if model.fit_intercept else []) + [float(c) for c in model.coef_]
    return list(zip(names, values))


def _coef_text(value: float, is_intercept: bool) -> str:
    if value == 0.0 and not is_intercept:
        return f"{'0':>14}  (not selected)"
    if value == 0 or 1e-4 <= abs(value) < 1e6:
        return f"{value:>14.6f}"
    return f"{value:>14.6e}"


def _cv_lines(model, max_rows: int = 12) -> list[str]:
    cv = model.cv_
    if cv is None:
        return []
    r, a = cv["best"]
    mean, se = cv["mse_mean"][r][a], cv["mse_se"][r][a]
    rule = "the smallest mean CV error" if cv["selection"] == "min" else "the one-SE rule"
    ratios = ", ".join(f"{v:g}" for v in cv["l1_ratios"])
    k = len(cv["fold_labels"])
    lines = [
        f"Cross-validation: {k} folds ({cv['assignment']['description']}), "
        f"{len(cv['alphas'][0])} alphas, l1_ratio {ratios}.",
        f"  chosen: alpha {cv['alpha']:.6g}, l1_ratio {cv['l1_ratio']:g} ({rule}); "
        f"CV MSE {mean:.6g} ± {se:.3g} (SE)",
        f"  alpha_min {cv['alpha_min']:.6g}   alpha_1se {cv['alpha_1se']:.6g}",
        "",
        *path_table_lines(model, max_rows=max_rows, ratio_index=r),
    ]
    return lines


def path_table_lines(model, *, max_rows: int | None = None, ratio_index: int | None = None):
    """The path table (alpha, mean CV error, its SE, non-zero count; GCV for ridge).

    ``max_rows`` keeps evenly spaced rows plus the marked ones; ``ratio_index`` shows one
    l1 ratio (default: all)."""
    cv = model.cv_
    lines = []
    ratios = range(len(cv["l1_ratios"])) if ratio_index is None else [ratio_index]
    for r in ratios:
        gcv = cv["gcv"][r]
        header = f"  {'alpha':>12}  {'mean CV MSE':>13}  {'SE':>10}  {'non-zero':>8}"
        header += f"  {'GCV':>12}" if gcv is not None else ""
        lines += [f"  l1_ratio {cv['l1_ratios'][r]:g}:", header]
        alphas = cv["alphas"][r]
        shown = _rows_to_show(model, r, len(alphas), max_rows)
        if len(shown) < len(alphas):
            lines[-2] += f" ({len(shown)} of {len(alphas)} alphas shown)"
        for a in shown:
            marks = []
            if [r, a] == cv["best"]:
                marks.append("chosen")
            if r == cv["best"][0] and alphas[a] == cv["alpha_min"]:
                marks.append("min")
            if r == cv["best"][0] and alphas[a] == cv["alpha_1se"]:
                marks.append("1se")
            line = (
                f"  {alphas[a]:>12.6g}  {cv['mse_mean'][r][a]:>13.6g}  {cv['mse_se'][r][a]:>10.3g}"
                f"  {int(cv['n_nonzero'][r][a]):>8d}"
            )
            if gcv is not None:
                line += f"  {_num(gcv[a]):>12}"
            lines.append(line + ("  ← " + ", ".join(marks) if marks else ""))
    return lines


def _rows_to_show(model, r: int, count: int, max_rows: int | None) -> list[int]:
    if max_rows is None or count <= max_rows:
        return list(range(count))
    cv = model.cv_
    alphas = cv["alphas"][r]
    step = max(1, math.ceil(count / max_rows))
    rows = set(range(0, count, step)) | {count - 1}
    for a, alpha in enumerate(alphas):
        if [r, a] == cv["best"] or alpha in (cv["alpha_min"], cv["alpha_1se"]):
            rows.add(a)
    return sorted(rows)


def _num(value) -> str:
    return "nan" if value is None else f"{value:.6g}"


def penalized_summary_text(model) -> str:
    """The results table of a penalized model: coefficients, penalty, CV figures, no p values."""
    penalty = model.penalty_
    title = f"{penalty_words(penalty).capitalize()} Regression Results (penalized least squares)"
    p = model.n_features_in_
    left = [
        ("Dep. Variable:", model.target),
        ("Method:", "Coordinate descent" if penalty["l1_ratio"] > 0 else "Closed form"),
        ("No. Observations:", f"{model.n_samples_:,}"),
        ("Weights:", model.weight or "none"),
        ("Solver:", model.solver_),
        ("Duality gap:", f"{max(penalty['dual_gap'], 0.0):.3g}"),
    ]
    right = [
        ("alpha:", f"{penalty['alpha']:.6g}"),
        ("l1_ratio:", f"{penalty['l1_ratio']:g}"),
        ("Standardized:", "yes" if penalty["standardize"] else "no"),
        ("Non-zero coefs:", f"{penalty['n_nonzero']} of {p}"),
        ("R-squared (train):", f"{model.r2_:#.4g}"),
        ("RMSE (train):", f"{model.rmse_:#.5g}"),
    ]
    lines = [title.center(78), _RULE]
    for (lk, lv), (rk, rv) in zip(left, right):
        lines.append(f"{lk:<20}{str(lv):>18}   {rk:<20}{rv:>17}")
    lines += [_RULE, f"{'':<16}{'coef':>14}", _THIN]
    for name, value in _terms(model):
        label = name if len(name) <= 15 else name[:14] + "…"
        lines.append(f"{label:<16}{_coef_text(value, name == 'Intercept')}")
    lines.append(_RULE)
    cv_lines = _cv_lines(model)
    if cv_lines:
        lines += [*cv_lines, _RULE]
    notes = [NO_P_VALUES, *model.warnings_]
    lines.append("Notes:")
    lines.extend(f"[{i}] {note}" for i, note in enumerate(notes, 1))
    return "\n".join(lines)


def penalized_summary_markdown(model) -> str:
    penalty = model.penalty_
    head = (
        f"**{penalty_words(penalty)}: {model.target}** — n = {model.n_samples_:,}, "
        f"alpha = {penalty['alpha']:.6g}, l1_ratio = {penalty['l1_ratio']:g}, "
        f"{penalty['n_nonzero']} of {model.n_features_in_} coefficients non-zero, "
        f"R² (train) = {model.r2_:.4g}, solver {model.solver_}"
    )
    rows = ["| term | coef |", "|---|---:|"]
    rows += [f"| {name} | {value:.6g} |" for name, value in _terms(model)]
    notes = [NO_P_VALUES, *model.warnings_]
    cv = model.cv_
    if cv is not None:
        r, a = cv["best"]
        notes.insert(
            0,
            f"Chosen by {len(cv['fold_labels'])}-fold cross-validation "
            f"({cv['assignment']['description']}): CV MSE {cv['mse_mean'][r][a]:.6g} ± "
            f"{cv['mse_se'][r][a]:.3g}; alpha_min {cv['alpha_min']:.6g}, "
            f"alpha_1se {cv['alpha_1se']:.6g}.",
        )
    return f"{head}\n\n" + "\n".join(rows) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"


def penalized_summary_json(model) -> dict:
    terms = _terms(model)
    data = {
        "target": model.target,
        "param_names": [name for name, _ in terms],
        "params": [value for _, value in terms],
        "penalty": dict(model.penalty_),
        "nobs": model.n_samples_,
        "rsquared": model.r2_,
        "rmse": model.rmse_,
        "solver": model.solver_,
        "weight": model.weight,
        "bse": None,
        "pvalues": None,
        "notes": [NO_P_VALUES, *model.warnings_],
    }
    cv = model.cv_
    if cv is not None:
        r, a = cv["best"]
        data["cv"] = {
            "folds": len(cv["fold_labels"]),
            "assignment": cv["assignment"],
            "selection": cv["selection"],
            "alpha": cv["alpha"],
            "l1_ratio": cv["l1_ratio"],
            "alpha_min": cv["alpha_min"],
            "alpha_1se": cv["alpha_1se"],
            "mse_mean": cv["mse_mean"][r][a],
            "mse_se": cv["mse_se"][r][a],
        }
    return data


# --------------------------------------------------------------------------- the CLI's reports
def _head(model, seconds) -> str:
    terms = " + ".join(str(n) for n in model.feature_names_in_)
    files = len(model.inputs_)
    head = (
        f"{model.target} ~ {terms}{'' if model.fit_intercept else ' (no intercept)'}\n"
        f"{model.n_samples_:,} rows used from {files} file{'s' if files != 1 else ''}"
    )
    if model.weight:
        head += f", weighted by {model.weight} (Σw = {model.weight_sum_:.6g})"
    if model.rows_dropped_:
        head += f"; {model.rows_dropped_:,} rows dropped for missing values"
    if seconds is not None:
        head += f"; {seconds:.1f} s"
    return head


def penalized_fit_report(model, *, seconds=None, saved_to=None) -> str:
    """``streamreg fit --alpha``: the coefficients, the penalty and how the solve ended."""
    penalty = model.penalty_
    width = max(len(name) for name, _ in [*_terms(model), ("term", 0.0)])
    table = [f"  {'term':<{width}}  {'coefficient':>14}"]
    for name, value in _terms(model):
        table.append(f"  {name:<{width}}{_coef_text(value, name == 'Intercept')}")
    stats = (
        f"  {penalty_words(penalty)}: alpha {penalty['alpha']:.6g}, "
        f"{penalty['n_nonzero']} of {model.n_features_in_} coefficients non-zero\n"
        f"  R² (training) {model.r2_:.6f}   RMSE (training) {model.rmse_:.6g}   "
        f"coordinate-descent sweeps {penalty['n_iter']}, "
        f"duality gap {max(penalty['dual_gap'], 0.0):.2g}\n"
        "  no standard errors or p values for a penalized fit (see 'streamreg summary')"
    )
    parts = [_head(model, seconds), "", *table, "", stats]
    if saved_to is not None:
        parts.append(f"  model saved to {saved_to}")
    return "\n".join(parts)


def cv_report(model, *, seconds=None, saved_to=None, plot_to=None, max_rows=25) -> str:
    """``streamreg cv``: the path table, the chosen and one-SE alphas, the refit."""
    cv = model.cv_
    parts = [_head(model, seconds), ""]
    parts += _cv_lines(model, max_rows=max_rows)[:3]
    parts.append("")
    for r in range(len(cv["l1_ratios"])):
        parts += path_table_lines(model, max_rows=max_rows, ratio_index=r)
    parts += ["", "Refit on all rows at the chosen alpha:"]
    width = max(len(name) for name, _ in [*_terms(model), ("term", 0.0)])
    for name, value in _terms(model):
        parts.append(f"  {name:<{width}}{_coef_text(value, name == 'Intercept')}")
    parts.append(
        f"  R² (training) {model.r2_:.6f}   RMSE (training) {model.rmse_:.6g}   "
        f"{model.penalty_['n_nonzero']} of {model.n_features_in_} non-zero"
    )
    if saved_to is not None:
        parts.append(f"  model saved to {saved_to}")
    if plot_to is not None:
        parts.append(f"  plot written to {plot_to}")
    return "\n".join(parts)


def path_csv(model) -> str:
    """Every row of the path table as CSV text."""
    cv = model.cv_
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["l1_ratio", "alpha", "mse_mean", "mse_se", "n_nonzero", "gcv", "gcv_df", "chosen"]
    )
    for r, ratio in enumerate(cv["l1_ratios"]):
        gcv, df = cv["gcv"][r], cv["gcv_df"][r]
        for a, alpha in enumerate(cv["alphas"][r]):
            writer.writerow(
                [
                    repr(ratio),
                    repr(alpha),
                    repr(cv["mse_mean"][r][a]),
                    repr(cv["mse_se"][r][a]),
                    int(cv["n_nonzero"][r][a]),
                    "" if gcv is None or gcv[a] is None else repr(gcv[a]),
                    "" if df is None else repr(df[a]),
                    int([r, a] == cv["best"]),
                ]
            )
    return out.getvalue()
