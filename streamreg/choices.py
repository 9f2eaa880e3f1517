"""The values of the library's choice parameters, as plain tuples of names.

They live here, in a module that imports nothing, so that the command line can list them
in its help pages (``--solver [auto|cholesky|…]``) and check them without loading numpy,
pyarrow, scipy or the solvers: ``streamreg fit --help`` starts as fast as ``streamreg
--help``. The modules that own the choices import them from here (``design.NULL_POLICIES``
is this ``NULL_POLICIES``). The solver names are the registry's, :data:`
streamreg.solvers.SOLVER_NAMES` (derived from ``FAMILIES``), written out: a test checks that
the two agree.

>>> "HC3" in ROBUST_TYPES, SOLVER_NAMES[0]
(True, 'auto')
"""

from __future__ import annotations

NULL_POLICIES = ("drop", "error")  # nulls=: drop the row (counted) or raise
ROBUST_TYPES = ("HC0", "HC1", "HC2", "HC3", "cluster")  # cov_type= besides "nonrobust"
SCHEDULES = ("constant", "invscaling", "step")  # GradientOptions(schedule=)
SELECTIONS = ("min", "1se")  # cv(select=): the least mean error, or the one-SE rule
RANK_DEFICIENT = ("error", "alias", "minimum_norm")  # rank_deficient=: refuse, NA, lstsq
ON_CHANGE = ("error", "replace")  # a job's on_change: a changed file is an error or replaced
# solver=; a penalty (alpha=) is solved over the state of one of PENALIZED_STATE_SOLVERS.
SOLVER_NAMES = ("auto", "cholesky", "qr", "exact", "sgd", "newton", "lbfgs")
PENALIZED_STATE_SOLVERS = ("auto", "cholesky", "qr", "exact")
# model.diagnostics: statsmodels' bottom block, in the order of its summary and the model file.
DIAGNOSTIC_NAMES = (
    "omnibus",
    "omnibus_pvalue",
    "skew",
    "kurtosis",
    "durbin_watson",
    "jarque_bera",
    "jarque_bera_pvalue",
)
