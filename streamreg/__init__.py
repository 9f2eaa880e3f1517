"""streamreg — exact linear regression on data larger than memory.

import streamreg
model = streamreg.fit("data/study_hours", target="score")
model.coef_, model.intercept_, model.r2_
model.save("model.json"); streamreg.load("model.json")
lasso = streamreg.fit("data/study_hours", target="score", alpha=0.1, l1_ratio=1.0)
result = streamreg.cv("data/study_hours", target="score", l1_ratio=0.5, folds=5)
result.alpha_, result.mse_path_, result.best_model_
"""

from ._version import __version__
from .cv import cv
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
from .fitting import fit
from .model import LinearModel, load
from .model.penalty import CVResult
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


def __getattr__(name):
    # Imported on first use: scikit-learn takes longer to import than the rest of streamreg.
    if name == "SGDOptions":
        from .solvers.gradient import SGDOptions

        return SGDOptions
    if name == "StreamingLinearRegression":
        from .estimator import StreamingLinearRegression

        return StreamingLinearRegression
    if name in ("StreamingElasticNet", "StreamingElasticNetCV"):
        from . import penalized_estimators

        return getattr(penalized_estimators, name)
    raise AttributeError(f"module 'streamreg' has no attribute {name!r}")
