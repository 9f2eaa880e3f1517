"""Options of the gradient solvers, checked once, and the learning-rate schedule.

>>> GradientOptions(epochs=3, momentum=0.9).checked().epochs
3
>>> learning_rate_at(GradientOptions(schedule="step"), 0.1, epoch=2)
0.025
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from ...choices import SCHEDULES
from ...errors import InputError

OPTIMIZERS = ("sgd", "adam")
DEFAULT_TOL = {"sgd": 1e-4, "newton": 1e-6, "lbfgs": 1e-6}
ADAM_LEARNING_RATE = 0.01
# Independent random streams, by their first key after the seed.
ORDER_STREAM, SPLIT_STREAM, ROWS_STREAM = 0, 1, 2


# ---------------------------------------------------------------------- options
@dataclass(frozen=True)
class GradientOptions:
    """Options of the gradient solvers (``sgd``; ``newton`` and ``lbfgs`` use ``l2``,
    ``standardize``, ``tol``, ``loss_rtol``, ``max_iter`` and ``holdout``).

    learning_rate: step size on the standardized problem (None: automatic, see the module).
    schedule: ``constant``, ``invscaling`` (``η/(1+epoch)^power_t``) or ``step``
    (``η·step_factor^⌊epoch/step_epochs⌋``). minibatch: rows per step. epochs: at most
    this many passes of steps. max_iter: L-BFGS iterations. seed: every random choice.
    momentum: heavy-ball momentum (0 ≤ momentum < 1). optimizer: ``sgd`` or ``adam``
    (``beta1``, ``beta2``, ``epsilon``). l2: ridge penalty on the standardized slopes.
    average: report the suffix average of the iterates (else the last one). standardize:
    step on standardized columns. tol: gradient-norm tolerance (None: 1e-4 for sgd, 1e-6
    otherwise). loss_rtol: stop when the loss changes by at most this, relatively.
    holdout: fraction of rows held out for early stopping; patience: epochs without
    improvement (also: epochs of growth that count as divergence). record_steps: keep
    the minibatch loss of every step.
    """

    learning_rate: float | None = None
    schedule: str = "constant"
    power_t: float = 0.5
    step_factor: float = 0.5
    step_epochs: int = 1
    minibatch: int = 256
    epochs: int = 10
    max_iter: int = 200
    seed: int = 0
    momentum: float = 0.0
    optimizer: str = "sgd"
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    l2: float = 0.0
    average: bool = True
    standardize: bool = True
    tol: float | None = None
    loss_rtol: float | None = None
    holdout: float = 0.0
    patience: int = 3
    record_steps: bool = False

    @classmethod
    def coerce(cls, value) -> GradientOptions:
        """``None`` → the defaults; a dict → options (unknown names are an error)."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            names = {f.name for f in dataclasses.fields(cls)}
            unknown = sorted(set(value) - names)
            if unknown:
                raise InputError(
                    f"unknown sgd option {unknown[0]!r}; the options are: "
                    f"{', '.join(sorted(names))}."
                )
            return cls(**value)
        raise InputError(
            f"sgd options must be an SGDOptions or a dict; got {type(value).__name__}."
        )

    def checked(self) -> GradientOptions:
        """Validate every option; the error names the option, its value and what is expected."""

        def need(ok: bool, name: str, expected: str):
            if not ok:
                raise InputError(f"{name} must be {expected}; got {getattr(self, name)!r}.")

        def number(
            name: str,
            low: float,
            high: float = math.inf,
            *,
            low_open=True,
            high_open=True,
            optional=False,
        ):
            value = getattr(self, name)
            if optional and value is None:
                return
            ok = (
                isinstance(value, (int, float))
                and not isinstance(value, bool)
                and math.isfinite(value)
            )
            ok = (
                ok
                and (value > low if low_open else value >= low)
                and (value < high if high_open else value <= high)
            )
            need(ok, name, _range_words(low, high, low_open, high_open))

        def integer(name: str, low: int):
            value = getattr(self, name)
            need(
                isinstance(value, int) and not isinstance(value, bool) and value >= low,
                name,
                f"an integer ≥ {low}",
            )

        number("learning_rate", 0.0, optional=True)
        need(self.schedule in SCHEDULES, "schedule", f"one of {', '.join(SCHEDULES)}")
        number("power_t", 0.0)
        number("step_factor", 0.0, 1.0, high_open=False)
        integer("step_epochs", 1)
        integer("minibatch", 1)
        integer("epochs", 1)
        integer("max_iter", 1)
        integer("seed", 0)
        number("momentum", 0.0, 1.0, low_open=False)
        need(self.optimizer in OPTIMIZERS, "optimizer", f"one of {', '.join(OPTIMIZERS)}")
        need(
            not (self.optimizer == "adam" and self.momentum),
            "momentum",
            "0 with optimizer='adam' (Adam has its own momentum, beta1)",
        )
        number("beta1", 0.0, 1.0, low_open=False)
        number("beta2", 0.0, 1.0, low_open=False)
        number("epsilon", 0.0)
        number("l2", 0.0, low_open=False)
        need(isinstance(self.average, bool), "average", "True or False")
        need(isinstance(self.standardize, bool), "standardize", "True or False")
        number("tol", 0.0, low_open=False, optional=True)
        number("loss_rtol", 0.0, low_open=False, optional=True)
        number("holdout", 0.0, 1.0, low_open=False)
        integer("patience", 1)
        need(isinstance(self.record_steps, bool), "record_steps", "True or False")
        return self

    def resolved_tol(self, solver: str) -> float:
        return DEFAULT_TOL[solver] if self.tol is None else float(self.tol)


# The name before the options configured newton and lbfgs too.
SGDOptions = GradientOptions


def _range_words(low, high, low_open, high_open) -> str:
    if high == math.inf:
        return f"a number {'>' if low_open else '≥'} {low:g}"
    return f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def learning_rate_at(options: SGDOptions, base: float, epoch: int) -> float:
    """The step size of ``epoch`` (0-based) under the options' schedule."""
    if options.schedule == "invscaling":
        return base / (1.0 + epoch) ** options.power_t
    if options.schedule == "step":
        return base * options.step_factor ** (epoch // options.step_epochs)
    return base
