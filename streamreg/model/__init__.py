"""Results: the fitted :class:`LinearModel`, its inference, robust covariances and its file
format."""

from .linear_model import LinearModel, load
from .multi import MultiTargetModel

__all__ = ["LinearModel", "MultiTargetModel", "load"]
