"""Helpers for the model-language tests: a formula fit through the encoder and the
existing solver, and comparisons with statsmodels."""

from __future__ import annotations

import numpy as np

from streamreg.design.coding import DesignPlan
from streamreg.design.encoded import EncodedSpec
from streamreg.design.formula import parse_formula
from streamreg.design.levels import discover_levels
from streamreg.engine.scan import accumulate
from streamreg.io.sources import Source
from streamreg.model import LinearModel
from streamreg.solvers.moments import MomentState
from streamreg.solvers.views import finish_state


def accumulate_design(source, encoder, *, state_kind=MomentState, form="auto", batch_size=None):
    """One pass of the engine over an encoder's design (``form``: auto, grouped or dense)."""
    spec = EncodedSpec(
        encoder.design,
        nulls=encoder.nulls,
        unseen=encoder.coder.unseen,
        form="dense" if form == "dense" else "auto",
    )
    spec._encoder = encoder  # the caller reads the encoder's counts (unseen rows)
    grouped = spec.grouped_for(state_kind)
    assert form != "grouped" or grouped, "grouped encoding builds moment states only"
    size = spec.batch_rows(grouped=grouped, given=batch_size)
    return accumulate(source, spec, state_kind, batch_size=size)


def fit_formula(
    source: Source,
    formula: str,
    *,
    weight=None,
    form="auto",
    state_kind=MomentState,
    batch_size=None,
    drop_collinear=False,
    nulls="drop",
):
    """(model, design, accumulation) of a formula fitted in one pass after level discovery."""
    plan = DesignPlan.from_formula(parse_formula(formula), source.schema, weight=weight)
    levels = discover_levels(source, plan.categorical_sources).levels
    design = plan.with_levels(levels)
    encoder = EncodedSpec(design, nulls=nulls).encoder
    acc = accumulate_design(
        source, encoder, state_kind=state_kind, form=form, batch_size=batch_size
    )
    state, _ = finish_state(encoder, acc.state)
    model = LinearModel.from_state(
        state,
        fit_intercept=plan.intercept,
        weight=weight,
        drop_collinear=drop_collinear,
        rows_read=acc.rows_read,
        rows_dropped_by_column=acc.dropped,
        log_weight_sum=acc.log_weight_sum,
    )
    return model, design, acc


def assert_close(ours, theirs, rtol=1e-8, what=""):
    ours, theirs = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=0, err_msg=what)


def assert_p_close(ours, theirs):
    """p values within 1e-8, absolute or relative, whichever is looser."""
    ours, theirs = np.atleast_1d(np.asarray(ours, float)), np.atleast_1d(np.asarray(theirs, float))
    assert np.all(np.abs(ours - theirs) <= np.maximum(1e-8, 1e-8 * np.abs(theirs))), (ours, theirs)


def assert_matches_statsmodels(model, ref, design=None, rtol=1e-8):
    """Names, params, bse, t, p, R², F (and their p) equal statsmodels' results ``ref``."""
    assert model.param_names == list(ref.params.index)
    assert_close(model.params, ref.params, rtol, "params")
    assert_close(model.bse, ref.bse, rtol, "bse")
    assert_close(model.tvalues, ref.tvalues, rtol, "tvalues")
    assert_p_close(model.pvalues, ref.pvalues)
    assert model.nobs == ref.nobs
    if design is not None and design.implicit_intercept:
        # statsmodels found the implicit constant: R² and F about the mean (see Design).
        centered = float(model.state_.comoment[-1, -1])
        r2 = 1.0 - model.ssr / centered
        f = (centered - model.ssr) / (model.solution_.rank - 1) / model.scale
        assert_close(r2, ref.rsquared, rtol, "rsquared")
        assert_close(f, ref.fvalue, rtol, "fvalue")
        return
    assert_close(model.rsquared, ref.rsquared, rtol, "rsquared")
    assert_close(model.fvalue, ref.fvalue, rtol, "fvalue")
    assert_p_close(model.f_pvalue, ref.f_pvalue)
