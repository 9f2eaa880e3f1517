"""Diagnostic plots of big fits: one pass, accumulators that do not grow with the rows, exact
counts whatever the chunking, a quantile sketch within its proven bound — and real images."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.stats.outliers_influence import OLSInfluence
from typer.testing import CliRunner

import streamreg
from streamreg.cli import app
from streamreg.model.diagnostics.plot_pass import plot_pass

pytest.importorskip("matplotlib")
runner = CliRunner()


def synthetic(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)) * [1.0, 2.0, 0.5] + [0.0, 10.0, -3.0]
    y = 1.0 + x @ [0.5, -1.0, 2.0] + rng.standard_t(4, size=n)
    frame = pd.DataFrame(x, columns=["a", "b", "c"]).assign(y=y)
    frame.loc[7, "y"] += 25.0  # an outlier to find
    frame.loc[11, ["a", "y"]] = [12.0, 40.0]  # a high-leverage point
    return frame


def image(path) -> np.ndarray:
    import matplotlib.image

    return matplotlib.image.imread(path)


def assert_real_png(path, min_width=600, min_height=400):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = image(path)
    height, width = pixels.shape[:2]
    assert width >= min_width and height >= min_height, (width, height)
    rgb = pixels[..., :3]
    assert rgb.std() > 0.05  # not blank: a plot, not one colour
    assert (rgb.min(axis=2) < 0.5).mean() > 0.01  # dark ink (axes, points, text) somewhere


def test_diagnostic_figure_is_a_real_png_and_svg_on_request(tmp_path):
    frame = synthetic(5000)
    model = streamreg.fit(frame, target="y")
    fig = model.plot_diagnostics(frame, out=tmp_path / "diag.png")
    assert len(fig.axes) >= 4
    assert_real_png(tmp_path / "diag.png", min_width=1000, min_height=800)
    model.plot_diagnostics(frame, out=tmp_path / "diag.svg")
    svg = (tmp_path / "diag.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    model.plot_coefficients(out=tmp_path / "coef.png")
    assert_real_png(tmp_path / "coef.png", min_width=500, min_height=150)


def test_cli_plots_diagnostics_over_the_data_and_coefficients_without(tmp_path):
    frame = synthetic(3000)
    folder = tmp_path / "data"
    folder.mkdir()
    for i, rows in enumerate(np.array_split(np.arange(len(frame)), 3)):
        frame.iloc[rows].to_parquet(folder / f"part-{i}.parquet", index=False)
    model_path = tmp_path / "m.json"
    streamreg.fit(folder, target="y").save(model_path)
    out = tmp_path / "diag.png"
    result = runner.invoke(app, ["plot", str(model_path), "--data", str(folder), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert_real_png(out, min_width=1000, min_height=800)
    result = runner.invoke(app, ["plot", str(model_path), "-o", str(tmp_path / "coef.svg")])
    assert result.exit_code == 0 and "<svg" in (tmp_path / "coef.svg").read_text()
    result = runner.invoke(app, ["plot", str(model_path), "-o", str(tmp_path / "x.gif"), "--data",
                                 str(folder), "--format", "gif"])  # fmt: skip
    # The CLI's usage error for a choice (exit 2, one line); the library says "format must be…".
    assert result.exit_code == 2 and "'gif' is not one of png, svg" in result.output
    assert not (tmp_path / "x.gif").exists()
    with pytest.raises(streamreg.InputError, match="format must be one of png, svg"):
        streamreg.load(model_path).plot_coefficients(tmp_path / "x.gif", format="gif")
    assert not (tmp_path / "x.gif").exists()


def test_plot_accumulators_do_not_grow_with_the_rows():
    small, big = synthetic(4_000), synthetic(64_000, seed=1)
    sizes = []
    for frame in (small, big):
        acc = plot_pass(streamreg.fit(frame, target="y"), frame, batch_size=1000)
        sizes.append(
            (
                acc.residuals.counts.size,
                acc.scale_location.counts.size,
                acc.leverage.counts.size,
                len(acc.influential.by_residual.records()),
            )
        )
        assert acc.sketch.n_items <= (acc.sketch.capacity + 1) * len(acc.sketch.levels)
        assert acc.n_rows == len(frame)
    assert sizes[0] == sizes[1]  # 16× the rows, the same grids and top-k


def test_counts_and_top_rows_do_not_depend_on_the_chunking(tmp_path):
    frame = synthetic(2000)
    model = streamreg.fit(frame, target="y")
    whole = plot_pass(model, frame, batch_size=5000)
    folder = tmp_path / "parts"
    folder.mkdir()
    for i, rows in enumerate(np.array_split(np.arange(len(frame)), 4)):
        frame.iloc[rows].to_parquet(folder / f"p{i}.parquet", index=False)
    parts = plot_pass(model, folder, batch_size=77)
    for name in ("residuals", "scale_location", "leverage"):
        np.testing.assert_array_equal(getattr(whole, name).counts, getattr(parts, name).counts)
    for top in ("by_residual", "by_leverage", "by_cooks_distance"):
        ours = [r["row"] for r in getattr(parts.influential, top).records()]
        assert ours == [r["row"] for r in getattr(whole.influential, top).records()]


def test_influential_rows_and_sketch_agree_with_statsmodels():
    frame = synthetic(20_000)  # beyond the sketch's capacity (4096): it compacts
    model = streamreg.fit(frame, target="y")
    acc = plot_pass(model, frame, batch_size=256)
    ref = sm.OLS(frame["y"], sm.add_constant(frame[["a", "b", "c"]])).fit()
    influence = OLSInfluence(ref)
    student = influence.resid_studentized_internal
    leverage = influence.hat_matrix_diag
    cooks = influence.cooks_distance[0]
    top = acc.influential.by_residual.records()
    assert [r["row"] for r in top] == list(np.argsort(-np.abs(student), kind="stable")[:10])
    assert top[0]["row"] == 11 or top[0]["row"] == 7  # the planted outliers lead
    for record in acc.influential.by_cooks_distance.records():
        row = record["row"]
        np.testing.assert_allclose(record["studentized"], student[row], rtol=1e-9)
        np.testing.assert_allclose(record["leverage"], leverage[row], rtol=1e-9)
        np.testing.assert_allclose(record["cooks_distance"], cooks[row], rtol=1e-8)
    assert acc.influential.by_leverage.records()[0]["row"] == 11
    # The Q–Q points: each sketch quantile's true rank is within the sketch's proven bound
    # (ranks counted among statsmodels' values, which agree with ours to ~1e-12).
    ordered = np.sort(student)
    bound = acc.sketch.rank_error_bound
    assert 0 < bound <= acc.sketch.theoretical_bound()
    n = len(ordered)
    for q in np.linspace(0.001, 0.999, 41):
        value = acc.sketch.quantile(q)
        slack = 1e-9 * max(abs(value), 1.0)
        target = int(np.ceil(q * n))
        below = int(np.searchsorted(ordered, value - slack, side="left"))
        at_or_below = int(np.searchsorted(ordered, value + slack, side="right"))
        assert below <= target - 1 + bound and at_or_below >= target - bound, q


def test_histogram_counts_are_exact():
    frame = synthetic(1500)
    model = streamreg.fit(frame, target="y")
    acc = plot_pass(model, frame, batch_size=100)
    hist = acc.residuals
    ref = sm.OLS(frame["y"], sm.add_constant(frame[["a", "b", "c"]])).fit()
    counts, _, _ = np.histogram2d(ref.fittedvalues, ref.resid, bins=[hist.x_edges, hist.y_edges])
    inside = hist.counts.sum()
    assert inside + hist.outside == len(frame)
    np.testing.assert_array_equal(hist.counts, counts.astype(np.int64))
