"""Wide models are saved compactly (format version 2) and exactly; version-1 files still load;
small fits keep writing version 1 (``test_golden`` checks them byte for byte).

Oracles: the arrays of the model before saving (bit for bit after loading), the same model
written the old way (lists, version 1), and ``tracemalloc``'s count of the bytes allocated
while saving compared with the bytes of the matrices themselves.
"""

from __future__ import annotations

import base64
import json
import tracemalloc

import numpy as np
import pytest

import streamreg
from streamreg.errors import ModelFormatError
from streamreg.io.packed import pack_matrix, should_pack, unpack_matrix
from streamreg.model.linear_model import LinearModel
from streamreg.solvers.moments import MomentState
from streamreg.solvers.qr import QRState

P = 120  # features: the matrices have more than PACK_MIN_ENTRIES entries


@pytest.fixture(scope="module")
def wide():
    rng = np.random.default_rng(5)
    n = 4 * P
    x = rng.normal(size=(n, P)) + rng.normal(size=P) * 10
    y = x @ rng.normal(size=P) + rng.normal(size=n)
    names = [f"x{j}" for j in range(P)]
    state = MomentState.from_arrays(np.column_stack([x, y]), names=[*names, "y"])
    return LinearModel.from_state(state)


def _as_version_1(data: dict) -> dict:
    """The same model as an older streamreg wrote it: every matrix a list of lists."""
    old = json.loads(json.dumps(data))
    old["format_version"] = 1
    old["xtx_inv"] = unpack_matrix(old["xtx_inv"], (P, P), "m", "xtx_inv").tolist()
    old["state"]["format_version"] = 1
    old["state"]["comoment"] = unpack_matrix(
        old["state"]["comoment"], (P + 1, P + 1), "m", "comoment"
    ).tolist()
    return old


def test_a_wide_model_round_trips_exactly(tmp_path, wide):
    path = tmp_path / "wide.json"
    wide.save(path)
    data = json.loads(path.read_text())
    assert data["format_version"] == 2 and data["state"]["format_version"] == 2
    assert data["state"]["comoment"]["layout"] == "symmetric"
    back = streamreg.load(path)
    assert back.state_ == wide.state_
    assert np.array_equal(back.coef_, wide.coef_)
    assert np.array_equal(back.solution_.xtx_inv, wide.solution_.xtx_inv)
    np.testing.assert_array_equal(back.bse, wide.bse)
    assert back.to_dict() == data


def test_a_version_1_wide_file_still_loads(tmp_path, wide):
    data = wide.to_dict()
    old = tmp_path / "old.json"
    old.write_text(json.dumps(_as_version_1(data), indent=1))
    back = streamreg.load(old)
    assert back.state_ == wide.state_
    assert np.array_equal(back.solution_.xtx_inv, wide.solution_.xtx_inv)
    new = tmp_path / "new.json"
    wide.save(new)
    assert new.stat().st_size < 0.5 * old.stat().st_size


def test_saving_allocates_about_the_matrices_not_python_lists(tmp_path, wide):
    wide.to_dict()  # the statistics are computed once and cached; only the writing is measured
    matrices = wide.solution_.xtx_inv.nbytes + wide.state_.comoment.nbytes
    tracemalloc.start()
    try:
        wide.save(tmp_path / "wide.json")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Lists of Python floats took ~18x the matrices' bytes (text and objects); packed ~2.7x.
    assert peak < 4 * matrices


def test_a_qr_state_is_packed_as_a_triangle(tmp_path):
    rng = np.random.default_rng(2)
    z = rng.normal(size=(300, P + 1))
    state = QRState.from_arrays(z, names=[f"c{j}" for j in range(P + 1)])
    data = state.to_dict()
    assert data["format_version"] == 2 and data["r"]["layout"] == "upper"
    assert QRState.from_dict(json.loads(json.dumps(data))) == state


@pytest.mark.parametrize(
    "matrix",
    [
        np.arange(12.0).reshape(3, 4),
        np.array([[1.0, 2.0], [2.0, np.nan]]),
        np.triu(np.arange(1.0, 10.0).reshape(3, 3)),
        np.array([[np.inf, -0.0], [5e-324, 1e308]]),
    ],
)
def test_packing_is_exact(matrix):
    packed = json.loads(json.dumps(pack_matrix(matrix)))
    back = unpack_matrix(packed, matrix.shape, "m", "k")
    assert np.array_equal(back, matrix, equal_nan=True)
    assert np.array_equal(np.signbit(back), np.signbit(matrix))


def test_small_matrices_stay_lists():
    assert not should_pack(np.zeros((99, 99))) and should_pack(np.zeros((100, 100)))


def _with_a_nan(packed: dict) -> dict:
    matrix = unpack_matrix(packed, (P, P), "m", "xtx_inv")
    matrix[0, 1] = np.nan
    return pack_matrix(matrix)


def _packed_model(wide) -> dict:
    return json.loads(json.dumps(wide.to_dict()))


@pytest.mark.parametrize(
    "mutate, words",
    [
        (lambda d: d["xtx_inv"].update(data="!!not base64!!"), "'xtx_inv' is not a packed"),
        (lambda d: d["xtx_inv"].update(shape=[P, P - 1]), "'xtx_inv' is not a packed"),
        (lambda d: d["xtx_inv"].update(layout="diagonal"), "'xtx_inv' is not a packed"),
        (
            lambda d: d["xtx_inv"].update(data=base64.b64encode(b"\0" * 8).decode()),
            "'xtx_inv' is not a packed",
        ),
        (lambda d: d["state"]["comoment"].update(shape=[3, 3]), "'comoment' is not a packed"),
        (lambda d: d.update(format_version=1), "'xtx_inv' must be a 120×120 matrix"),
        (lambda d: d["state"].update(format_version=1), "not a number"),
        (lambda d: d.update(xtx_inv=_with_a_nan(d["xtx_inv"])), "must hold finite numbers"),
    ],
)
def test_a_tampered_packed_matrix_is_refused(tmp_path, wide, mutate, words):
    data = _packed_model(wide)
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ModelFormatError, match=words):
        streamreg.load(path)
