"""The residual pass through ``streamreg.fit``: statsmodels' bottom block, in the data's order.

Every figure of ``model.diagnostics`` is checked against statsmodels on the same data
(Longley and other bundled data sets, weighted and not), to 1e-8 relative, whatever the
chunking: in-memory batches, Parquet files read in sorted order, Dask partitions.
"""

from __future__ import annotations

import json

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.stats.stattools import durbin_watson, jarque_bera, omni_normtest

import streamreg
from streamreg.model.diagnostics import DIAGNOSTIC_NAMES

RTOL = 1e-8


def bundled(name: str) -> tuple[pd.DataFrame, str]:
    data = getattr(sm.datasets, name).load_pandas()
    frame = data.data.astype(float)
    return frame, data.endog_name


DATASETS = {
    "longley": bundled("longley"),
    "stackloss": bundled("stackloss"),
    "statecrime": (
        sm.datasets.statecrime.load_pandas().data[["murder", "poverty", "hs_grad", "urban"]],
        "murder",
    ),
    "ccard": bundled("ccard"),
}


def reference(frame: pd.DataFrame, target: str, weights=None) -> dict:
    exog = sm.add_constant(frame.drop(columns=[target]))
    model = (
        sm.OLS(frame[target], exog)
        if weights is None
        else sm.WLS(frame[target], exog, weights=weights)
    )
    result = model.fit()
    omnibus, omnibus_p = omni_normtest(result.wresid)
    jb, jb_p, skew, kurtosis = jarque_bera(result.wresid)
    return {
        "result": result,
        "diagnostics": {
            "omnibus": omnibus,
            "omnibus_pvalue": omnibus_p,
            "skew": skew,
            "kurtosis": kurtosis,
            "durbin_watson": durbin_watson(result.wresid),
            "jarque_bera": jb,
            "jarque_bera_pvalue": jb_p,
        },
    }


def chunkings(frame: pd.DataFrame, tmp_path, target: str, weight=None):
    """The same rows, fitted five ways (order kept)."""
    kwargs = dict(target=target, weight=weight, diagnostics=True)
    yield "memory, one batch", streamreg.fit(frame, **kwargs)
    yield "memory, 3-row batches", streamreg.fit(frame, batch_size=3, **kwargs)
    cuts = np.array_split(np.arange(len(frame)), 3)
    folder = tmp_path / "parts"
    folder.mkdir(exist_ok=True)
    for i, rows in enumerate(cuts):
        frame.iloc[rows].to_parquet(folder / f"part-{i:02d}.parquet", index=False)
    yield "3 files, 4-row batches", streamreg.fit(folder, batch_size=4, **kwargs)
    partitions = dd.from_pandas(frame.reset_index(drop=True), npartitions=4, sort=False)
    yield "dask, 4 partitions", streamreg.fit(partitions, **kwargs)


def assert_diagnostics(got: dict, want: dict, rtol=RTOL, label=""):
    assert set(got) == set(DIAGNOSTIC_NAMES)
    for name in DIAGNOSTIC_NAMES:
        np.testing.assert_allclose(got[name], want[name], rtol=rtol, err_msg=f"{label}: {name}")


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_bottom_block_matches_statsmodels_across_chunkings(name, tmp_path):
    frame, target = DATASETS[name]
    want = reference(frame, target)["diagnostics"]
    for label, model in chunkings(frame, tmp_path, target):
        assert_diagnostics(model.diagnostics, want, label=f"{name}, {label}")


def test_weighted_bottom_block_uses_the_whitened_residuals(tmp_path, rng):
    frame, target = DATASETS["statecrime"]
    frame = frame.assign(w=rng.uniform(0.2, 3.0, size=len(frame)))
    want = reference(frame.drop(columns=["w"]), target, weights=frame["w"])["diagnostics"]
    for label, model in chunkings(frame, tmp_path, target, weight="w"):
        assert_diagnostics(model.diagnostics, want, label=label)


def test_durbin_watson_follows_the_data_order_across_files(tmp_path, rng):
    """Files are read in sorted order, rows in file order: shuffling the rows changes DW, and the
    file order decides which rows are adjacent."""
    n = 300
    x = rng.normal(size=n)
    noise = np.zeros(n)
    for t in range(1, n):  # AR(1) errors: DW well below 2 in this order
        noise[t] = 0.8 * noise[t - 1] + rng.normal()
    frame = pd.DataFrame({"x": x, "y": 1.0 + 2.0 * x + noise})
    folder = tmp_path / "ordered"
    folder.mkdir()
    # Written out of order on purpose: 'part-b' holds the later rows, 'part-a' the earlier.
    frame.iloc[150:].to_parquet(folder / "part-b.parquet", index=False)
    frame.iloc[:150].to_parquet(folder / "part-a.parquet", index=False)
    model = streamreg.fit(folder, target="y", diagnostics=True, batch_size=32)
    want = durbin_watson(reference(frame, "y")["result"].resid)
    np.testing.assert_allclose(model.diagnostics["durbin_watson"], want, rtol=RTOL)
    assert want < 1.0
    shuffled = streamreg.fit(frame.sample(frac=1.0, random_state=1), target="y", diagnostics=True)
    assert shuffled.diagnostics["durbin_watson"] > 1.5  # order-free statistics agree, DW not
    np.testing.assert_allclose(shuffled.diagnostics["skew"], model.diagnostics["skew"], rtol=1e-9)


def test_summary_prints_statsmodels_bottom_block(tmp_path):
    frame, target = DATASETS["longley"]
    model = streamreg.fit(frame, target=target)
    ref = reference(frame, target)["result"]
    ours = str(model.summary()).splitlines()
    theirs = ref.summary().as_text().splitlines()
    start = next(i for i, line in enumerate(theirs) if line.startswith("Omnibus:"))
    mine = next(i for i, line in enumerate(ours) if line.startswith("Omnibus:"))
    assert ours[mine : mine + 3] == theirs[start : start + 3]  # Omnibus … Prob(JB), same text
    kurtosis, cond = ours[mine + 3], theirs[start + 3]
    assert kurtosis.split()[:2] == cond.split()[:2]  # Kurtosis: 2.434
    assert kurtosis.split()[-1] == cond.split()[-1]  # Cond. No. 4.86e+09


def test_diagnostics_are_optional_for_files_and_saved_as_format_2(tmp_path):
    frame, target = DATASETS["stackloss"]
    path = tmp_path / "stack.parquet"
    frame.to_parquet(path, index=False)
    plain = streamreg.fit(path, target=target)
    assert plain.diagnostics is None  # files: a second read only when asked
    text = str(plain.summary())
    assert "Omnibus:" not in text and "fit with diagnostics=True" in text
    plain.save(tmp_path / "plain.json")
    assert json.loads((tmp_path / "plain.json").read_text())["format_version"] == 1
    model = streamreg.fit(path, target=target, diagnostics=True)
    model.save(tmp_path / "model.json")
    saved = json.loads((tmp_path / "model.json").read_text())
    assert saved["format_version"] == 2 and set(saved["diagnostics"]) == set(DIAGNOSTIC_NAMES)
    loaded = streamreg.load(tmp_path / "model.json")
    assert loaded.diagnostics == model.diagnostics
    assert str(loaded.summary()) == str(model.summary())
    in_memory = streamreg.fit(frame, target=target)  # in memory: on by default
    assert_diagnostics(in_memory.diagnostics, model.diagnostics, rtol=1e-12)
    assert streamreg.fit(frame, target=target, diagnostics=False).diagnostics is None


@pytest.mark.parametrize(
    "mutate, words",
    [
        (lambda d: d["diagnostics"].pop("skew"), "'diagnostics' must map exactly"),
        (lambda d: d["diagnostics"].update(skew="high"), "diagnostic 'skew' must be a finite"),
        (lambda d: d.update(use_t="yes"), "'use_t' must be true, false"),
    ],
)
def test_loading_bad_diagnostics_names_the_field(tmp_path, mutate, words):
    frame, target = DATASETS["stackloss"]
    data = streamreg.fit(frame, target=target).to_dict()
    mutate(data)
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(streamreg.ModelFormatError, match=words):
        streamreg.load(tmp_path / "bad.json")


def test_residual_pass_recomputes_a_cancelled_ssr(tmp_path):
    """R² ≈ 1 − 1e-12: the first pass's M_yy − M_xyᵀβ keeps few digits; the model's SSR comes
    from the residuals and matches statsmodels' (which takes them from residuals too)."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2000, 3)) * 1e3
    y = x @ [1.0, -2.0, 3.0] + 1e-3 * rng.normal(size=2000)
    path = tmp_path / "close.parquet"
    pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": y}).to_parquet(path)
    model = streamreg.fit(path, target="y", batch_size=300)
    ref = sm.OLS(y, sm.add_constant(x)).fit()
    np.testing.assert_allclose(model.ssr, ref.ssr, rtol=1e-10)
    np.testing.assert_allclose(model.bse.to_numpy(), ref.bse, rtol=1e-9)
    assert any("recomputed from the residuals" in w for w in model.warnings_)
    assert model.diagnostics is None  # computed on the way, but not asked for


def test_big_data_are_read_again_only_when_the_ssr_lost_many_digits(tmp_path, monkeypatch):
    """Re-reading big files costs as much as the fit: the pass then runs only below ~10 digits."""
    import streamreg.model.residual_pass as residual_pass

    rng = np.random.default_rng(6)
    x = rng.normal(size=(3000, 3))
    y = x @ [1.0, -2.0, 3.0] + 0.05 * rng.normal(size=3000)  # bound ≈ 5e-12
    path = tmp_path / "close.parquet"
    pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": y}).to_parquet(path)
    small = streamreg.fit(path, target="y")
    bound = residual_pass.ssr_rounding_bound(small.state_, small.solution_, True)
    assert 1e-13 < bound < 1e-10
    assert any("recomputed from the residuals" in w for w in small.warnings_)
    monkeypatch.setattr(residual_pass, "CHEAP_VALUES", 1000)  # as if the files were big
    big = streamreg.fit(path, target="y")
    assert not any("recomputed" in w for w in big.warnings_)
    np.testing.assert_allclose(big.ssr, small.ssr, rtol=1e-9)  # ~10+ digits either way


def test_big_data_read_again_take_plain_residuals_when_they_meet_the_big_tolerance(
    tmp_path, monkeypatch
):
    """A very close fit of big data: the SSR is recomputed (the first pass keeps ~6 digits), from
    plain residuals (good to ~1e-11 here, within big data's 1e-10) rather than compensated ones,
    and still agrees with statsmodels' SSR from in-memory residuals."""
    import streamreg.model.residual_pass as residual_pass

    rng = np.random.default_rng(7)
    x = rng.normal(size=(3000, 3)) + [5.0, -3.0, 1.0]
    y = 2.0 + x @ [1.0, -2.0, 3.0] + 1e-4 * rng.normal(size=3000)
    path = tmp_path / "very-close.parquet"
    pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": y}).to_parquet(path)
    monkeypatch.setattr(residual_pass, "CHEAP_VALUES", 1000)  # as if the files were big
    monkeypatch.setattr(residual_pass, "COMPENSATE_ALWAYS_VALUES", 1000)
    taken = []
    monkeypatch.setattr(
        residual_pass, "residuals", lambda *a, **k: taken.append(k) or pytest.fail("compensated")
    )
    model = streamreg.fit(path, target="y")
    plain = residual_pass.residual_rounding_bound(model.state_, model.solution_, True)
    first = residual_pass.ssr_rounding_bound(model.state_, model.solution_, True)
    assert first > residual_pass.SSR_RELATIVE_TOLERANCE_BIG
    assert residual_pass.COMPENSATE_TOLERANCE < plain < residual_pass.SSR_RELATIVE_TOLERANCE_BIG
    assert residual_pass.ssr_plan(model.state_, model.solution_, True) == (True, False)
    assert any("recomputed from the residuals" in w for w in model.warnings_)
    assert taken == []
    ref = sm.OLS(y, sm.add_constant(x)).fit()
    np.testing.assert_allclose(model.ssr, ref.ssr, rtol=1e-10)
