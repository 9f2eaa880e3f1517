"""What the columns of a fit mean and how Arrow batches become numbers.

* :mod:`~streamreg.design.spec` — the plain design: named numeric columns read as float64
  (:class:`DesignSpec`, :func:`batch_arrays`);
* the model language: :mod:`~streamreg.design.formula` (formulas → terms),
  :mod:`~streamreg.design.expressions` (factor expressions), :mod:`~streamreg.design.coding`
  (terms → design columns, levels, the saved design), :mod:`~streamreg.design.reparam`
  (center/scale), :mod:`~streamreg.design.levels` (level discovery and coding),
  :mod:`~streamreg.design.encoding` and :mod:`~streamreg.design.grouped` (batches → dense
  rows or group sums), :mod:`~streamreg.design.encoded` (the encoded design of a fit, read
  by the engine like a :class:`DesignSpec`) and :mod:`~streamreg.design.roles` (what each
  column of the data is in a fit).
"""

from .spec import (
    NULL_POLICIES,
    DesignBatch,
    DesignSpec,
    batch_arrays,
    resolve_spec,
    screen_values,
)

__all__ = [
    "NULL_POLICIES",
    "DesignBatch",
    "DesignSpec",
    "batch_arrays",
    "resolve_spec",
    "screen_values",
]
