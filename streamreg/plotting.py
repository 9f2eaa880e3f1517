"""``streamreg plot``: a saved model's loss curve and, for one feature, its fitted line, as a PNG.

Needs matplotlib (``pip install 'streamreg[plot]'``). Everything drawn comes from the
model file: the loss history recorded by a gradient solver, the loss of the exact
least-squares fit (solved from the saved moment state, drawn as the floor the curve
approaches), and — with a single feature — the fitted line over the feature's mean ± 2.5
standard deviations with a ±2·RMSE band. No data is read.
"""

from __future__ import annotations

import os

import numpy as np

from .errors import InputError, StreamregError, parameter
from .io.atomic import atomic_path
from .solvers.gradient.problem import Problem
from .solvers.moments import solve_normal_equations


def plot_model(model, out: str | os.PathLike) -> None:
    """Write the figure for ``model`` to ``out`` (PNG, atomically)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError(
            "streamreg plot needs matplotlib: pip install 'streamreg[plot]' "
            "(or pip install matplotlib)."
        ) from None
    record = model.optimizer_
    one_line = model.n_features_in_ == 1 and not np.isnan(model.coef_[0])
    if record is None and not one_line:
        raise InputError(
            f"the model (solver '{model.solver_}') keeps no loss history and has "
            f"{model.n_features_in_} features, so there is nothing to plot; fit with "
            f"a gradient solver ({parameter('solver', 'sgd')}, newton or lbfgs) for a loss curve."
        )
    panels = int(record is not None) + int(one_line)
    fig, axes = plt.subplots(1, panels, figsize=(6.4 * panels, 4.6), squeeze=False)
    axes = list(axes[0])
    if record is not None:
        _loss_panel(axes.pop(0), model, record)
    if one_line:
        _line_panel(axes.pop(0), model)
    fig.tight_layout()
    try:
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
    finally:
        plt.close(fig)


def _loss_panel(ax, model, record: dict) -> None:
    history = record["history"]
    steps = np.asarray(history["iteration"])
    unit = "epoch" if record["solver"] == "sgd" else "iteration"
    ax.plot(steps, history["loss"], "o-", color="C0", label="training loss")
    if history.get("validation_loss"):
        held = np.array([np.nan if v is None else v for v in history["validation_loss"]])
        ax.plot(steps, held, "s--", color="C2", label="held-out loss")
    floor = _exact_loss(model, record)
    if floor is not None:
        ax.axhline(floor, color="0.4", lw=1, ls=":", label=f"exact least squares ({floor:.4g})")
    ax.set_yscale("log")
    ax.set_xlabel(unit)
    scale = "standardized" if record["standardized"] else "original units"
    ax.set_ylabel(f"loss: ½ mean squared residual ({scale})")
    right = ax.twinx()
    right.plot(steps, history["gradient_norm"], "^:", color="C3", label="gradient norm")
    right.set_yscale("log")
    right.set_ylabel("gradient norm", color="C3")
    lines = ax.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="upper right", fontsize="small")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    status = "converged" if record["converged"] else "not converged"
    if record["stop_reason"].startswith("early stopping"):
        status = "stopped early on the held-out loss"
    n = record["iterations"]
    ax.set_title(f"{record['solver']}: {n} {unit}{'s' if n != 1 else ''}, {status}")
    ax.grid(True, which="major", alpha=0.3)


def _exact_loss(model, record: dict) -> float | None:
    """The loss of the exact fit on the same scale (None when penalized or unsolvable)."""
    if record["options"].get("l2"):
        return None
    state = model.state_
    try:
        exact = solve_normal_equations(
            state, fit_intercept=model.fit_intercept, drop_collinear=True
        )
    except StreamregError:
        return None
    kept = np.flatnonzero(~np.isnan(model.coef_))
    problem = Problem.build(
        state, kept, fit_intercept=model.fit_intercept, standardize=record["standardized"]
    )
    return float(exact.ssr / (2.0 * state.weight_sum * problem.scale[-1] ** 2))


def _line_panel(ax, model) -> None:
    state = model.state_
    mean = state.mean + state.mean_lo
    sd = np.sqrt(max(state.comoment[0, 0] / state.weight_sum, 0.0))
    x = np.linspace(mean[0] - 2.5 * sd, mean[0] + 2.5 * sd, 200)
    y = model.predict(x.reshape(-1, 1))
    band = 2.0 * model.rmse_
    name, target = str(model.feature_names_in_[0]), model.target
    ax.fill_between(x, y - band, y + band, color="C0", alpha=0.15, label="± 2·RMSE")
    sign = "+" if model.intercept_ >= 0 else "−"
    ax.plot(
        x,
        y,
        color="C0",
        lw=2,
        label=f"{target} = {model.coef_[0]:.4g}·{name} {sign} {abs(model.intercept_):.4g}",
    )
    ax.plot([mean[0]], [mean[1]], "o", color="C1", label="means of the training rows")
    ax.set_xlabel(name)
    ax.set_ylabel(target)
    ax.set_title(f"fitted line ({model.solver_}; from the model file, no data read)")
    ax.legend(loc="upper left", fontsize="small")
    ax.grid(True, alpha=0.3)


# --------------------------------------------------------------------------- cross-validation
def plot_cv(model, out: str | os.PathLike) -> None:
    """Write the cross-validation figure of a model chosen by :func:`streamreg.cv` (PNG,
    atomically): the mean CV error with ±1 standard-error bars against alpha (one curve per
    l1 ratio; the chosen, smallest-error and one-SE alphas marked; the non-zero counts along
    the top), and the coefficient path of the chosen l1 ratio. Everything comes from the
    model's ``cv_`` record; no data is read."""
    cv = model.cv_
    if cv is None:
        raise InputError(
            "the model was not chosen by cross-validation, so it has no CV curve or "
            "coefficient path to plot; 'streamreg cv --plot' (streamreg.cv) draws them."
        )
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12.8, 4.8))
    best_r, best_a = cv["best"]
    for r, ratio in enumerate(cv["l1_ratios"]):
        alphas = np.asarray(cv["alphas"][r])
        mean, se = np.asarray(cv["mse_mean"][r]), np.asarray(cv["mse_se"][r])
        left.errorbar(
            alphas, mean, yerr=se, fmt="o-", ms=3, lw=1, capsize=2, elinewidth=0.8,
            color=f"C{r}", label=f"l1_ratio {ratio:g}",
        )  # fmt: skip
    left.set_xscale("log")
    left.axvline(cv["alpha_min"], color="0.3", ls="--", lw=1, label=f"min {cv['alpha_min']:.3g}")
    left.axvline(cv["alpha_1se"], color="0.3", ls=":", lw=1, label=f"1-SE {cv['alpha_1se']:.3g}")
    left.plot([cv["alpha"]], [cv["mse_mean"][best_r][best_a]], "*", ms=14, color="C3",
              label=f"chosen ({cv['selection']})")  # fmt: skip
    left.set_xlabel("alpha (log scale)")
    left.set_ylabel(f"mean CV MSE over {len(cv['fold_labels'])} folds, ± 1 SE")
    left.set_title(f"cross-validation ({cv['assignment']['description']})", fontsize="medium")
    left.legend(fontsize="small")
    left.grid(True, which="major", alpha=0.3)
    top = left.secondary_xaxis("top")
    alphas = np.asarray(cv["alphas"][best_r])
    ticks = np.unique(np.linspace(0, len(alphas) - 1, min(8, len(alphas))).astype(int))
    top.set_xticks(alphas[ticks])
    top.set_xticklabels([str(int(cv["n_nonzero"][best_r][i])) for i in ticks], fontsize="small")
    top.set_xlabel("non-zero coefficients", fontsize="small")
    coefs = np.asarray(cv["coef_path"][best_r])
    names = [str(n) for n in model.feature_names_in_]
    for j, name in enumerate(names):
        right.plot(alphas, coefs[:, j], lw=1.2, color=f"C{j % 10}", label=name if j < 12 else None)
    right.set_xscale("log")
    right.axvline(cv["alpha"], color="C3", ls="--", lw=1)
    right.axhline(0.0, color="0.5", lw=0.6)
    right.set_xlabel("alpha (log scale)")
    right.set_ylabel("coefficient (original units)")
    right.set_title(
        f"coefficient path, l1_ratio {cv['l1_ratios'][best_r]:g} (refit on all rows)",
        fontsize="medium",
    )
    if len(names) <= 12:
        right.legend(fontsize="small", ncol=2 if len(names) > 6 else 1)
    right.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    try:
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
    finally:
        plt.close(fig)


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError(
            "streamreg plot needs matplotlib: pip install 'streamreg[plot]' "
            "(or pip install matplotlib)."
        ) from None
    return plt
