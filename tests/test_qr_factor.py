"""The batch factor of the QR state: LAPACK's dgeqrf called directly, narrow and blocked (wide)."""

from __future__ import annotations

import numpy as np
import pytest

from streamreg.solvers.moments import MomentState
from streamreg.solvers.qr import QRState


@pytest.mark.parametrize("shape", [(5000, 21), (3, 6), (1200, 160)])
def test_batch_factor_is_the_r_of_the_centered_rows(rng, shape):
    # 160 columns take LAPACK's blocked algorithm (beyond ~128), 3 × 6 a factor with zero rows.
    rows, k = shape
    z = rng.normal(size=(rows, k)) * rng.uniform(0.5, 20, size=k) + rng.uniform(-100, 100, size=k)
    kept = z.copy()
    names = [f"c{j}" for j in range(k)]
    state = QRState.from_arrays(z, names=names)
    np.testing.assert_array_equal(z, kept)  # without overwrite=True the batch is not touched
    centered = z - z.mean(axis=0)
    oracle = np.linalg.qr(centered, mode="r")
    oracle = np.vstack([oracle, np.zeros((k - oracle.shape[0], k))])
    oracle *= np.where(np.diagonal(oracle) < 0, -1.0, 1.0)[:, None]
    assert state.r.shape == (k, k)
    assert np.allclose(np.tril(state.r, -1), 0.0)
    assert (np.diagonal(state.r) >= 0).all()
    scale = np.abs(oracle).max()
    assert np.abs(state.r - oracle).max() <= 1e-11 * scale
    gram = MomentState.from_arrays(z, names=names).comoment
    assert np.abs(state.r.T @ state.r - gram).max() <= 1e-11 * np.abs(gram).max()
