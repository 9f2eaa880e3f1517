"""streamreg — exact linear regression on data larger than memory.

import streamreg
model = streamreg.fit("data/study_hours", target="score")
model.coef_, model.intercept_, model.r2_
model.save("model.json"); streamreg.load("model.json")
lasso = streamreg.fit("data/study_hours", target="score", alpha=0.1, l1_ratio=1.0)
result = streamreg.cv("data/study_hours", target="score", l1_ratio=0.5, folds=5)
result.alpha_, result.mse_path_, result.best_model_
"""

import sys
from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING

from ._version import __version__
from .errors import (
    CollinearityError,
    ConvergenceWarning,
    DataError,
    DivergenceError,
    IllConditionedError,
    InputError,
    ModelFormatError,
    SchemaError,
    StreamregError,
    UnsolvedWarning,
)

if TYPE_CHECKING:  # what type checkers see; at run time __getattr__ imports these on first use
    from .cv import cv
    from .estimator import StreamingLinearRegression
    from .fitting import fit
    from .model import LinearModel, load
    from .model.penalty import CVResult
    from .penalized_estimators import StreamingElasticNet, StreamingElasticNetCV
    from .solvers.exact import ExactState
    from .solvers.gradient import GradientOptions, SGDOptions
    from .solvers.moments import MomentState
    from .solvers.qr import QRState

__all__ = [
    "__version__",
    "fit",
    "cv",
    "CVResult",
    "load",
    "LinearModel",
    "MomentState",
    "QRState",
    "ExactState",
    "GradientOptions",
    "UnsolvedWarning",
    "ConvergenceWarning",
    "StreamingLinearRegression",
    "StreamingElasticNet",
    "StreamingElasticNetCV",
    "StreamregError",
    "InputError",
    "SchemaError",
    "DataError",
    "CollinearityError",
    "IllConditionedError",
    "DivergenceError",
    "SGDOptions",
    "ModelFormatError",
]

# Public names imported on first use (module-level __getattr__, PEP 562), so that
# ``import streamreg`` and the command line's start-up load neither scipy, pandas, pyarrow's
# datasets nor scikit-learn: name → the module that defines it.
_LAZY = {
    "fit": ".fitting",
    "cv": ".cv",
    "CVResult": ".model.penalty",
    "load": ".model",
    "LinearModel": ".model",
    "MomentState": ".solvers.moments",
    "QRState": ".solvers.qr",
    "ExactState": ".solvers.exact",
    "GradientOptions": ".solvers.gradient",
    "SGDOptions": ".solvers.gradient",
    "StreamingLinearRegression": ".estimator",
    "StreamingElasticNet": ".penalized_estimators",
    "StreamingElasticNetCV": ".penalized_estimators",
}


def __getattr__(name: str):
    home = _LAZY.get(name)
    if home is None:
        raise AttributeError(f"module 'streamreg' has no attribute {name!r}")
    value = getattr(import_module(home, __name__), name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(ModuleType):
    """The package's module type: ``streamreg.cv`` stays the function.

    The submodule ``streamreg.cv`` has the function's name, and the import system binds a
    submodule on its package when it is first imported (``setattr(streamreg, "cv", module)``);
    the eager ``from .cv import cv`` used to rebind the function right after, and this does now.
    """

    def __setattr__(self, name: str, value) -> None:
        if name == "cv" and isinstance(value, ModuleType):
            value = value.cv
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
