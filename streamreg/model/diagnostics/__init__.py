"""Residual diagnostics of a fit: what a second, residual pass over the data accumulates.

* :mod:`.residuals` — residuals, leverage, studentized residuals and score rows of one batch;
* :mod:`.moments` — mergeable residual moments (Omnibus, skew, kurtosis, Jarque–Bera, SSR);
* :mod:`.durbin_watson` — the Durbin–Watson sums, merged in the data's order;
* :mod:`.summary` — both together (``model.diagnostics``) and statsmodels' bottom block;
* :mod:`.sketch`, :mod:`.accumulators` — a quantile sketch, 2-D histograms and top-k rows for
  plots of big fits, with memory flat in the number of rows.
"""

from ...choices import DIAGNOSTIC_NAMES
from .summary import ResidualDiagnostics, bottom_block

__all__ = ["DIAGNOSTIC_NAMES", "ResidualDiagnostics", "bottom_block"]
