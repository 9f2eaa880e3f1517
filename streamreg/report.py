"""Plain-text reports for people (the CLI prints these; the math never prints)."""

from __future__ import annotations

import numpy as np

from .progress import human_bytes


def coefficient_table(model, truth: dict | None = None) -> str:
    """Intercept and coefficients, one per line, with the true values when known."""
    names = (["(intercept)"] if model.fit_intercept else []) + [str(n) for n in model.feature_names_in_]
    values = ([model.intercept_] if model.fit_intercept else []) + list(model.coef_)
    width = max(len(n) for n in [*names, "term"])
    header = f"  {'term':<{width}}  {'coefficient':>14}"
    if truth is not None:
        header += f"  {'truth':>10}"
    lines = [header]
    for name, value in zip(names, values):
        shown = "aliased" if np.isnan(value) else f"{value:14.6f}"
        line = f"  {name:<{width}}  {shown:>14}"
        if truth is not None:
            true = truth.get("intercept") if name == "(intercept)" else truth.get("coef", {}).get(name)
            line += f"  {true:>10.4g}" if true is not None else f"  {'':>10}"
        lines.append(line)
    return "\n".join(lines)


def fit_report(model, *, seconds: float | None = None, saved_to=None, truth: dict | None = None) -> str:
    terms = " + ".join(str(n) for n in model.feature_names_in_)
    files = len(model.inputs_)
    head = (
        f"{model.target} ~ {terms}{'' if model.fit_intercept else ' (no intercept)'}\n"
        f"{model.n_samples_:,} rows used from {files} file{'s' if files != 1 else ''}"
    )
    if model.weight:
        head += f", weighted by {model.weight} (Σw = {model.weight_sum_:.6g})"
    if model.rows_dropped_:
        detail = ", ".join(f"{k}: {v:,}" for k, v in model.rows_dropped_by_column_.items())
        head += f"; {model.rows_dropped_:,} rows dropped for missing values ({detail})"
    if seconds is not None:
        head += f"; {seconds:.1f} s"
    stats = (
        f"  R² {model.r2_:.6f}   RMSE {model.rmse_:.6g}   "
        f"condition number {model.condition_number_:.3g}   solver {model.solver_}"
    )
    parts = [head, "", coefficient_table(model, truth), "", stats]
    if saved_to is not None:
        parts.append(f"  model saved to {saved_to}")
    return "\n".join(parts)


def inspect_report(info: dict) -> str:
    files = info["files"]
    lines = [f"{len(files)} file{'s' if len(files) != 1 else ''}, {info['rows']:,} rows, {human_bytes(info['bytes'])}"]
    width = max(len(c["name"]) for c in info["columns"])
    lines.append(f"  {'column':<{width}}  {'type':<14} {'numeric':<8} {'nulls':>10}")
    for col in info["columns"]:
        nulls = "?" if col["nulls"] is None else f"{col['nulls']:,}"
        kind = col["type"] + (" (partition)" if col["partition"] else "")
        lines.append(f"  {col['name']:<{width}}  {kind:<14} {'yes' if col['numeric'] else 'no':<8} {nulls:>10}")
    return "\n".join(lines)
