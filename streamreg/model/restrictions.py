r"""Tests of linear restrictions ``Rβ = q``: ``t_test``, ``f_test``, ``wald_test`` as statsmodels.

A restriction is given as statsmodels takes it — a string such as
``"x1 = x2"``, ``"x1 = x2, x3 = 2"`` or ``"(x1 = x2), (2*x3 + x4 = 1)"`` (parsed by
formulaic's :class:`~formulaic.utils.constraints.LinearConstraints`, the parser
statsmodels itself uses; names that are not identifiers go in backticks,
```x^2` = 0``), a list of such strings, an array ``R`` (``q = 0``) or a pair
``(R, q)`` — and tested with the parameters, their covariance (non-robust or
robust) and the residual degrees of freedom (``df_resid_inference`` for
clustered covariances). With ``V = R Σ Rᵀ`` and ``d = Rβ − q`` over ``J`` rows:

* ``t_test``: ``effect = Rβ``, ``sd = √diag V``, ``tvalue = d/sd``; p from
  Student's t with ``df_resid`` when ``use_t``, else from the normal;
* ``wald_test``: ``W = dᵀ V⁺ d`` (pseudo-inverse, with ``J`` lowered to the rank
  of ``V`` as statsmodels does); with ``use_f`` the statistic is ``F = W/J``
  with (J, df_resid) degrees of freedom, else χ²_J;
* ``f_test`` is ``wald_test(use_f=True)``.

Results carry statsmodels' attribute names *and shapes* (``ContrastResults``):
a single t restriction has ``effect`` of shape (1,), ``sd`` and ``tvalue`` of
shape (1, 1) and a 0-d ``pvalue``. Parameters that are aliased (NaN) may not
appear in a restriction; the others are tested on the kept block.

>>> import numpy as np
>>> res = t_test(np.array([1.0, 2.0, 2.5]), np.diag([0.04, 0.09, 0.16]), ["Intercept", "a", "b"],
...              df_resid=20, use_t=True, restriction="a = b")
>>> float(res.effect[0]), round(float(res.sd[0, 0]), 12), res.distribution
(-0.5, 0.5, 't')
"""

from __future__ import annotations

import re
import warnings

import numpy as np

from ..errors import InputError

_UNARY_MINUS = re.compile(r"(^|[=,(])\s*-")


class ContrastResult:
    """The outcome of a test of ``Rβ = q``, named as statsmodels' ``ContrastResults``."""

    def __init__(
        self,
        *,
        distribution: str,
        statistic,
        pvalue,
        df_denom=None,
        df_num=None,
        effect=None,
        sd=None,
        dist_args: tuple = (),
    ):
        self.distribution = distribution
        self.statistic = statistic
        self.pvalue = pvalue
        self.df_denom = df_denom
        self.df_num = df_num
        self.effect = effect
        self.sd = sd
        self.dist_args = dist_args
        self.tvalue = statistic if distribution in ("t", "norm") else None
        self.fvalue = statistic if distribution == "F" else None
        self.c_names = None if effect is None else [f"c{i}" for i in range(len(effect))]

    @property
    def dist(self):
        """The scipy distribution of the statistic under the null hypothesis."""
        from scipy import stats

        return {"t": stats.t, "norm": stats.norm, "F": stats.f, "chi2": stats.chi2}[
            self.distribution
        ]

    def conf_int(self, alpha: float = 0.05) -> np.ndarray:
        """``effect ∓ q·sd`` (t and normal tests only)."""
        if self.effect is None:
            raise InputError(
                "a confidence interval needs a t or normal test (t_test); this is a "
                f"{self.distribution} test of a joint hypothesis."
            )
        if not 0.0 < alpha < 1.0:
            raise InputError(f"alpha must be between 0 and 1; got {alpha}.")
        q = self.dist.ppf(1 - alpha / 2.0, *self.dist_args)
        return np.column_stack((self.effect - q * self.sd, self.effect + q * self.sd))

    def summary_frame(self, alpha: float = 0.05):
        """One row per restriction: coef, std err, t (or z), P>|t|, and the interval."""
        import pandas as pd

        ci = self.conf_int(alpha)
        stat = "t" if self.distribution == "t" else "z"
        return pd.DataFrame(
            {
                "coef": np.ravel(self.effect),
                "std err": np.ravel(self.sd),
                stat: np.ravel(self.statistic),
                f"P>|{stat}|": np.ravel(self.pvalue),
                "Conf. Int. Low": ci[:, 0],
                "Conf. Int. Upp.": ci[:, 1],
            },
            index=self.c_names,
        )

    def __repr__(self) -> str:
        if self.distribution == "F":
            return (
                f"<F test: F={self.fvalue!r}, p={self.pvalue}, df_denom={self.df_denom:.3g}, "
                f"df_num={self.df_num:.3g}>"
            )
        if self.distribution == "chi2":
            return (
                f"<Wald test (chi2): statistic={self.statistic}, p-value={self.pvalue}, "
                f"df_denom={self.df_denom:.3g}>"
            )
        return (
            f"<{self.distribution} test: effect={self.effect}, sd={np.ravel(self.sd)}, "
            f"p={self.pvalue}>"
        )


def linear_restrictions(restriction, param_names) -> tuple[np.ndarray, np.ndarray]:
    """``(R, q)`` of a restriction over ``param_names``, parsed by formulaic."""
    from formulaic.errors import FormulaicError
    from formulaic.utils.constraints import LinearConstraints

    names = [str(n) for n in param_names]
    spec = restriction
    if isinstance(spec, (list, tuple)) and spec and all(isinstance(s, str) for s in spec):
        spec = ", ".join(spec)  # statsmodels joins a list of strings the same way
    if isinstance(spec, str):
        # formulaic reads "= -1" as an unknown operator "=-" (patsy, statsmodels' other engine,
        # does not): a unary minus after "=", "," or "(" becomes "0 -".
        spec = _UNARY_MINUS.sub(r"\1 0 -", _quote_names(spec, names))
    elif isinstance(spec, tuple) and len(spec) == 2:
        spec = (
            np.asarray(spec[0], dtype=float),
            np.atleast_1d(np.squeeze(np.asarray(spec[1], dtype=float))),
        )
    elif not isinstance(spec, str):
        spec = np.asarray(spec, dtype=float)
    matrix = spec[0] if isinstance(spec, tuple) else spec
    if not isinstance(matrix, str) and np.atleast_2d(matrix).shape[-1] != len(names):
        raise InputError(
            f"the restriction matrix has {np.atleast_2d(matrix).shape[-1]} columns; "
            f"expected {len(names)}, one per parameter ({', '.join(names)})."
        )
    try:
        parsed = LinearConstraints.from_spec(spec, variable_names=names)
    except KeyError as exc:
        raise InputError(
            f"restriction {restriction!r} names {exc.args[0]!r}, which is not a parameter; "
            f"the parameters are {', '.join(names)}."
        ) from None
    except (FormulaicError, RuntimeError, ValueError, TypeError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"restriction {restriction!r} is not a linear restriction on the parameters "
            f"({first_line})."
        ) from None
    r = np.atleast_2d(np.asarray(parsed.constraint_matrix, dtype=float))
    q = np.asarray(parsed.constraint_values, dtype=float).reshape(-1)
    if r.shape[1] != len(names) or q.shape[0] != r.shape[0]:
        raise InputError(
            f"restriction {restriction!r} has {r.shape[1]} columns and {q.shape[0]} values; "
            f"expected {len(names)} columns (one per parameter) and one value per row."
        )
    empty = np.flatnonzero(~r.any(axis=1))
    if empty.size:
        raise InputError(f"restriction {restriction!r}: row {empty[0] + 1} involves no parameter.")
    return r, q


def _quote_names(spec: str, names: list[str]) -> str:
    """Parameter names that are not identifiers (a formula's ``C(region)[T.b]``,
    ``np.log(x2)``) put in backticks, so they are written as statsmodels takes them; the
    longest name wins where one contains another; text already in backticks is left alone."""
    odd = sorted((n for n in names if not n.isidentifier()), key=len, reverse=True)
    if not odd:
        return spec
    pattern = re.compile("`[^`]*`|" + "|".join(re.escape(n) for n in odd))
    return pattern.sub(lambda m: m[0] if m[0].startswith("`") else f"`{m[0]}`", spec)


def _kept_block(params, cov, param_names, restriction):
    params = np.asarray(params, dtype=float).reshape(-1)
    cov = np.asarray(cov, dtype=float)
    if cov.shape != (params.shape[0], params.shape[0]) or len(param_names) != params.shape[0]:
        raise InputError(
            f"params ({params.shape[0]}), param_names ({len(param_names)}) and cov "
            f"{cov.shape} do not describe the same parameters."
        )
    r, q = linear_restrictions(restriction, param_names)
    aliased = np.isnan(params)
    touched = np.flatnonzero(aliased & r.any(axis=0))
    if touched.size:
        raise InputError(
            f"restriction {restriction!r} involves '{param_names[touched[0]]}', which is "
            "aliased (collinear, no coefficient), so it cannot be tested."
        )
    kept = ~aliased
    return r[:, kept], q, params[kept], cov[np.ix_(kept, kept)]


def t_test(params, cov, param_names, df_resid, use_t, restriction) -> ContrastResult:
    """One t (or z) test per row of the restriction; see the module docstring."""
    from scipy import stats

    r, q, beta, sigma = _kept_block(params, cov, param_names, restriction)
    effect = r @ beta
    v = r @ sigma @ r.T
    if r.shape[0] > 1:
        sd = np.sqrt(np.diag(v))
        q_shaped = q
    else:
        sd = np.sqrt(v)
        q_shaped = q[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (effect - q_shaped) / sd
    if use_t:
        pvalue = np.squeeze(2.0 * stats.t.sf(np.abs(t), df_resid))
        return ContrastResult(
            distribution="t",
            statistic=t,
            pvalue=pvalue,
            df_denom=df_resid,
            effect=effect,
            sd=sd,
            dist_args=(df_resid,),
        )
    pvalue = np.full_like(t, np.nan)
    finite = ~np.isnan(t)
    pvalue[finite] = 2.0 * stats.norm.sf(np.abs(t[finite]))
    return ContrastResult(
        distribution="norm", statistic=t, pvalue=np.squeeze(pvalue), effect=effect, sd=sd
    )


def wald_test(
    params, cov, param_names, df_resid, use_f, restriction, *, scalar: bool = True
) -> ContrastResult:
    """The joint Wald test of every row of the restriction (F with ``use_f``, else χ²)."""
    from scipy import stats

    r, q, beta, sigma = _kept_block(params, cov, param_names, restriction)
    n_rows = r.shape[0]
    diff = (r @ beta)[:, None] - q[:, None]
    v = r @ sigma @ r.T
    if np.isnan(v).any():
        raise InputError(
            f"restriction {restriction!r}: the covariance of the restricted parameters "
            "holds NaN, so no Wald statistic exists."
        )
    rank = int(np.linalg.matrix_rank(v))
    if rank < n_rows:
        warnings.warn(
            f"covariance of constraints does not have full rank. The number of constraints "
            f"is {n_rows}, but rank is {rank}",
            stacklevel=2,
        )
        n_rows = rank
    statistic = diff.T @ np.linalg.pinv(v) @ diff
    if scalar and statistic.size == 1:
        statistic = float(np.squeeze(statistic))
    if use_f:
        statistic = statistic / n_rows
        return ContrastResult(
            distribution="F",
            statistic=statistic,
            pvalue=stats.f.sf(statistic, n_rows, df_resid),
            df_denom=df_resid,
            df_num=n_rows,
            dist_args=(n_rows, df_resid),
        )
    return ContrastResult(
        distribution="chi2",
        statistic=statistic,
        pvalue=np.squeeze(stats.chi2.sf(statistic, n_rows)),
        df_denom=n_rows,
        dist_args=(n_rows,),
    )


def f_test(params, cov, param_names, df_resid, restriction) -> ContrastResult:
    """``wald_test(..., use_f=True)``: the F test of the joint hypothesis."""
    return wald_test(params, cov, param_names, df_resid, True, restriction)


class RestrictionsMixin:
    """``t_test``, ``f_test`` and ``wald_test`` on a fitted model, as statsmodels' results have
    them (the host provides ``_params``, ``cov_params()``, ``param_names``, ``use_t``,
    ``_df_inference`` — ``G − 1`` for clustered covariances — and
    ``require_sampling_covariance``, which refuses a penalized fit)."""

    def t_test(self, r_matrix, use_t: bool | None = None) -> ContrastResult:
        """One t test per row of ``r_matrix`` (``"x1 = x2"``, ``"x1 = x2, x3 = 0"``, an array
        or ``(R, q)``), under the model's covariance (robust when fitted so).

        >>> import numpy as np, streamreg
        >>> x = np.arange(12.0).reshape(6, 2) ** 1.5
        >>> model = streamreg.fit(x, x @ [1.0, 1.0] + np.sin(np.arange(6.0)))
        >>> model.t_test("x0 = x1").distribution
        't'
        """
        self.require_sampling_covariance("t_test")
        return t_test(
            self._params,
            self.cov_params(),
            self.param_names,
            self._df_inference,
            self.use_t if use_t is None else bool(use_t),
            r_matrix,
        )

    def f_test(self, r_matrix) -> ContrastResult:
        """The F test of the joint hypothesis ``r_matrix`` (statsmodels' ``f_test``)."""
        self.require_sampling_covariance("f_test")
        return f_test(
            self._params, self.cov_params(), self.param_names, self._df_inference, r_matrix
        )

    def wald_test(self, r_matrix, use_f: bool | None = None, scalar: bool = True) -> ContrastResult:
        """The Wald test of ``r_matrix``: F with ``use_f`` (default: the model's ``use_t``, as
        statsmodels), else χ²."""
        self.require_sampling_covariance("wald_test")
        return wald_test(
            self._params,
            self.cov_params(),
            self.param_names,
            self._df_inference,
            self.use_t if use_f is None else bool(use_f),
            r_matrix,
            scalar=scalar,
        )
