"""Results: the fitted :class:`LinearModel`, its inference, robust covariances and its file
format."""

from .linear_model import LinearModel, load

__all__ = ["LinearModel", "load"]
