"""Figures of big fits: four diagnostic panels from one pass, and the coefficients' intervals.

:func:`diagnostic_figure` draws what :func:`~.plot_pass.plot_pass` accumulated — memory flat in
the number of rows, so a fit of a billion rows plots like one of a thousand:

1. residuals vs fitted values, as a 2-D histogram (log-scaled counts);
2. a normal Q–Q plot of the studentized residuals from the quantile sketch (its proven
   rank-error bound is printed on the panel; the ends are exact);
3. scale–location: √|studentized residual| vs fitted values, a 2-D histogram;
4. studentized residual vs leverage, a 2-D histogram with the top-k rows by Cook's distance,
   leverage and |residual| marked with their row numbers, and Cook's distance contours.

:func:`coefficient_figure` needs no data: each coefficient with its ``1 − α`` interval.
Points outside a panel's frame are counted in its title, never clipped silently. Figures are
written atomically as PNG (the default) or SVG (``.svg`` suffix or ``format="svg"``); they need
matplotlib (``pip install 'streamreg[plot]'``).
"""

from __future__ import annotations

import os
from pathlib import Path
from statistics import NormalDist

import numpy as np

from ...errors import InputError
from ...io.atomic import atomic_path
from .plot_pass import plot_pass

FORMATS = ("png", "svg")


def _new_figure(**options):
    """A matplotlib Figure outside pyplot's registry (no backend is switched, nothing leaks)."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise InputError(
            "plots need matplotlib: pip install 'streamreg[plot]' (or pip install matplotlib)."
        ) from None
    return Figure(**options)


def figure_format(out, format: str | None = None) -> str:
    """``png`` or ``svg``: as asked, else by the suffix of ``out``, else PNG."""
    if format is None:
        suffix = Path(str(out)).suffix.lower().lstrip(".") if out is not None else ""
        format = "svg" if suffix == "svg" else "png"
    format = str(format).lower()
    if format not in FORMATS:
        raise InputError(f"format must be one of {', '.join(FORMATS)}; got {format!r}.")
    return format


def save_figure(fig, out: str | os.PathLike, format: str | None = None) -> None:
    """Write ``fig`` to ``out`` atomically (no partial file is ever left)."""
    kind = figure_format(out, format)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format=kind, dpi=100)


def diagnostic_figure(
    model,
    data,
    y=None,
    *,
    out=None,
    format: str | None = None,
    weight=None,
    batch_size: int | None = None,
    client=None,
    progress: bool | None = False,
    bins: int = 200,
    top: int = 10,
):
    """The four panels of ``model`` over ``data`` (the rows it was fitted on, or new ones with
    the target column); returns the matplotlib Figure, also saved to ``out`` when given.
    A penalized fit is refused: leverage and studentized residuals need ``(XᵀWX)⁻¹``."""
    model.require_sampling_covariance(
        "the diagnostic panels (studentized residuals, leverage, Cook's distance)"
    )
    if out is not None:
        figure_format(out, format)  # a bad format fails before the pass, not after
    _new_figure()  # matplotlib is there, before the pass
    acc = plot_pass(
        model,
        data,
        y,
        weight=weight,
        batch_size=batch_size,
        client=client,
        progress=progress,
        bins=bins,
        top=top,
    )
    if acc.n_rows == 0:
        raise InputError("the data hold no usable rows to plot.")
    fig = _new_figure(figsize=(12, 9.5))
    axes = fig.subplots(2, 2)
    _density(axes[0, 0], acc.residuals, "fitted values", "residuals", zero=True)
    axes[0, 0].set_title(_frame_title("Residuals vs fitted", acc.residuals))
    _qq(axes[0, 1], acc.sketch)
    _density(axes[1, 0], acc.scale_location, "fitted values", "√|studentized residuals|")
    axes[1, 0].set_title(_frame_title("Scale–location", acc.scale_location))
    _leverage(axes[1, 1], acc)
    weighted = " (weighted)" if model.weight else ""
    fig.suptitle(
        f"{model.target} ~ {len(model.coef_)} features: {acc.n_rows:,} rows{weighted}, "
        f"one pass, memory independent of the rows",
        fontsize=11,
    )
    fig.tight_layout()
    if out is not None:
        save_figure(fig, out, format)
    return fig


def coefficient_figure(model, *, out=None, format: str | None = None, alpha: float = 0.05):
    """Each slope with its ``1 − alpha`` interval (from the model file alone; a penalized fit
    has none and is refused)."""
    model.require_sampling_covariance("coefficient intervals")
    if out is not None:
        figure_format(out, format)
    ci = model._conf_int(alpha)
    names = model.param_names
    start = int(model.fit_intercept)  # the intercept is on another scale: left out
    index = [i for i in range(start, len(names)) if np.isfinite(model._params[i])]
    if not index:
        raise InputError("the model has no estimated slopes to plot.")
    fig = _new_figure(figsize=(7.0, 1.2 + 0.38 * len(index)))
    ax = fig.subplots()
    positions = np.arange(len(index))[::-1]
    values = model._params[index]
    low, high = ci[index, 0], ci[index, 1]
    ax.errorbar(
        values,
        positions,
        xerr=np.vstack([values - low, high - values]),
        fmt="o",
        color="C0",
        ecolor="C0",
        capsize=3,
    )
    ax.axvline(0.0, color="0.5", lw=1, ls=":")
    ax.set_yticks(positions)
    ax.set_yticklabels([names[i] for i in index])
    level = f"{100 * (1 - alpha):g}%"
    ax.set_title(f"Coefficients of {model.target} with {level} intervals ({model.cov_type})")
    ax.set_xlabel("coefficient")
    ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    if out is not None:
        save_figure(fig, out, format)
    return fig


def _density(ax, hist, xlabel: str, ylabel: str, *, zero: bool = False) -> None:
    counts = hist.counts.T.astype(float)
    counts[counts == 0] = np.nan
    mesh = ax.pcolormesh(hist.x_edges, hist.y_edges, counts, cmap="viridis", norm=_log_norm(hist))
    ax.figure.colorbar(mesh, ax=ax, label="rows per cell")
    if zero:
        ax.axhline(0.0, color="C3", lw=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def _log_norm(hist):
    from matplotlib.colors import LogNorm

    top = max(int(hist.counts.max()), 1)
    return LogNorm(vmin=1, vmax=max(top, 2))


def _frame_title(name: str, hist) -> str:
    if not hist.outside:
        return name
    share = 100.0 * hist.outside / max(hist.count, 1)
    return f"{name}\n({hist.outside:,} rows, {share:.2g}%, outside the frame)"


def _qq(ax, sketch) -> None:
    normal = NormalDist()  # the standard library's: no scipy import for a plot
    n = sketch.count
    probabilities = (np.arange(1, min(n, 1000) + 1) - 0.5) / min(n, 1000)
    sample = sketch.quantiles(probabilities)
    theoretical = np.array([normal.inv_cdf(float(q)) for q in probabilities])
    ax.plot(theoretical, sample, ".", color="C0", ms=3)
    ends = [theoretical[0], theoretical[-1]]
    ax.plot(ends, ends, color="C3", lw=1)
    bound = 100.0 * sketch.rank_error_bound / max(n, 1)
    ax.set_title(f"Normal Q–Q\n(quantile sketch: ranks within {bound:.2g}% of {n:,} rows)")
    ax.set_xlabel("theoretical quantiles")
    ax.set_ylabel("studentized residuals")


def _leverage(ax, acc) -> None:
    _density(ax, acc.leverage, "leverage", "studentized residuals")
    seen: dict[int, dict] = {}
    for top in (
        acc.influential.by_cooks_distance,
        acc.influential.by_leverage,
        acc.influential.by_residual,
    ):
        for record in top.records():
            seen.setdefault(record["row"], record)
    if seen:
        points = np.array([[r["leverage"], r["studentized"]] for r in seen.values()])
        ax.scatter(points[:, 0], points[:, 1], s=14, color="C3", zorder=3)
        for row, record in seen.items():
            ax.annotate(
                f"{row}",
                (record["leverage"], record["studentized"]),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
    k = acc.influential.n_params
    high = max(acc.grid.leverage[1], max((r["leverage"] for r in seen.values()), default=0))
    h = np.linspace(max(high / 400, 1e-12), min(high, 0.999), 200)
    for distance in (0.5, 1.0):
        bound = np.sqrt(distance * k * (1 - h) / h)
        ax.plot(h, bound, ls="--", color="0.4", lw=0.8)
        ax.plot(h, -bound, ls="--", color="0.4", lw=0.8)
    ax.set_xlim(0, high * 1.05)
    ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 3))
    low, up = acc.grid.studentized
    extreme = max((abs(r["studentized"]) for r in seen.values()), default=0)
    ax.set_ylim(min(low, -extreme * 1.05), max(up, extreme * 1.05))
    ax.set_title(
        _frame_title("Residuals vs leverage (dashed: Cook's distance 0.5, 1)", acc.leverage)
    )
