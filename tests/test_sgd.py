"""The gradient solvers (streamreg.sgd): SGD, momentum, Adam, Newton and L-BFGS against the exact
fit.

Accuracy is measured on the standardized scale, as the issue states it: every
|Δβⱼ|·sd(xⱼ)/sd(y) and the prediction at the mean of X over sd(y). The oracle is
the exact solver (exact rational arithmetic on the accumulated sums).
"""

from __future__ import annotations

import json
import subprocess
import warnings

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from conftest import write_xy
from typer.testing import CliRunner

import streamreg
from streamreg import StreamingLinearRegression
from streamreg.cli import app
from streamreg.errors import CollinearityError, DivergenceError, InputError, ModelFormatError
from streamreg.estimator import UnsolvedWarning
from streamreg.solvers.gradient import SGDOptions

runner = CliRunner()
EXACT = "exact"  # solver="exact" (streamreg/exact.py); "qr" would do as well


def generated(n=100_000, p=10, noise=0.3, seed=20261127, offsets=True):
    """p independent features with offsets up to 1e6 and scales 1e-2 … 1e2; R² ≈ 0.99."""
    rng = np.random.default_rng(seed)
    scales = np.logspace(-2, 2, p)
    shift = np.linspace(0.0, 1e6, p) if offsets else np.zeros(p)
    x = rng.standard_normal((n, p)) * scales + shift
    beta = rng.uniform(-2, 2, p) / scales
    y = 3.0 + (x - shift) @ beta + shift @ beta + noise * rng.standard_normal(n)
    return x, y


def errors(model, ref, x, y):
    """(max |Δβⱼ|·sd(xⱼ)/sd(y), |Δŷ(mean of X)|/sd(y))."""
    sx, sy = x.std(axis=0), y.std()
    at_mean = x.mean(axis=0, keepdims=True)
    slopes = float(np.max(np.abs(model.coef_ - ref.coef_) * sx / sy))
    centre = float(abs(model.predict(at_mean)[0] - ref.predict(at_mean)[0]) / sy)
    return slopes, centre


@pytest.fixture(scope="module")
def data():
    x, y = generated()
    return x, y, streamreg.fit(x, y, solver=EXACT)


# ---------------------------------------------------------------------- accuracy budgets
@pytest.mark.parametrize(
    "options",
    [
        dict(),  # the defaults: automatic step, constant schedule, averaging
        dict(momentum=0.9),
        dict(optimizer="adam"),
        dict(schedule="invscaling"),
        dict(schedule="step"),
    ],
    ids=["default", "momentum", "adam", "invscaling", "step"],
)
def test_five_epochs_land_within_1e_3_of_the_exact_fit(data, options):
    x, y, ref = data
    model = streamreg.fit(x, y, solver="sgd", sgd=SGDOptions(epochs=5, **options))
    slopes, centre = errors(model, ref, x, y)
    assert slopes <= 1e-3 and centre <= 1e-3
    record = model.optimizer_
    assert 1 <= record["iterations"] <= 5 and model.n_iter_ == record["iterations"]
    assert record["passes"] == 1 + record["iterations"]  # the first pass, then one per epoch
    assert len(record["history"]["loss"]) == record["iterations"] + 1
    # The history is the loss of the reported parameters, computed exactly from the state.
    assert record["history"]["loss"][0] == pytest.approx(0.5)  # θ = 0: ½ var(ỹ)
    assert record["history"]["loss"][-1] == pytest.approx((1 - ref.r2_) / 2, rel=1e-5)


def test_offsets_of_1e6_change_nothing(data):
    """Centering at the first pass's means makes the 1e6 offsets vanish before any step."""
    x, y, _ = data
    x0, y0 = generated(offsets=False)
    np.testing.assert_allclose(x0, x - np.linspace(0.0, 1e6, 10), atol=1e-6)
    far = streamreg.fit(x, y, solver="sgd", sgd=SGDOptions(epochs=3))
    near = streamreg.fit(x0, y0, solver="sgd", sgd=SGDOptions(epochs=3))
    sx, sy = x.std(axis=0), y.std()
    np.testing.assert_allclose(far.coef_ * sx / sy, near.coef_ * sx / sy, rtol=0, atol=1e-8)


def test_raw_steps_on_offset_columns_do_not_converge_and_say_so(data):
    x, y, ref = data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = streamreg.fit(x, y, solver="sgd", sgd=SGDOptions(epochs=2, standardize=False))
    assert not model.converged_
    assert any("sgd did not converge" in w for w in model.warnings_)
    assert errors(model, ref, x, y)[0] > 1.0
    assert np.isfinite(model.coef_).all()


def test_weights_and_no_intercept(data):
    x, y, _ = data
    w = np.random.default_rng(3).uniform(0.2, 3.0, len(y))
    model = streamreg.fit(x, y, weight=w, solver="sgd", sgd=SGDOptions(epochs=5))
    assert errors(model, streamreg.fit(x, y, weight=w, solver=EXACT), x, y)[0] <= 1e-3
    x0, y0 = generated(n=20_000, offsets=False)
    ref0 = streamreg.fit(x0, y0, solver=EXACT, fit_intercept=False)
    sgd0 = streamreg.fit(
        x0, y0, solver="sgd", fit_intercept=False, sgd=SGDOptions(epochs=20, tol=1e-6)
    )
    rms = np.sqrt((x0**2).mean(axis=0)) / np.sqrt((y0**2).mean())
    assert np.max(np.abs(sgd0.coef_ - ref0.coef_) * rms) <= 1e-3
    assert sgd0.intercept_ == 0.0


# ---------------------------------------------------------------------- second order
def test_newton_is_the_ols_solution(data):
    x, y, ref = data
    model = streamreg.fit(x, y, solver="newton")
    np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-10)
    assert model.intercept_ == pytest.approx(ref.intercept_, rel=1e-10)
    record = model.optimizer_
    assert (record["iterations"], record["passes"], record["converged"]) == (1, 2, True)
    assert record["gradient_norm"] < 1e-10  # computed in a pass, not from the state
    np.testing.assert_allclose(model.bse, ref.bse, rtol=1e-8)


def test_newton_with_l2_is_ridge_on_the_standardized_columns(data):
    x, y, _ = data
    n = len(y)
    xs = (x - x.mean(axis=0)) / x.std(axis=0)
    ys = (y - y.mean()) / y.std()
    theta = np.linalg.solve(xs.T @ xs / n + 0.05 * np.eye(10), xs.T @ ys / n)
    model = streamreg.fit(x, y, solver="newton", sgd=SGDOptions(l2=0.05))
    np.testing.assert_allclose(model.coef_ * x.std(axis=0) / y.std(), theta, rtol=1e-9, atol=1e-12)
    assert np.isnan(model.bse).all() and "penalized" in " ".join(model.warnings_)
    sgd = streamreg.fit(x, y, solver="sgd", sgd=SGDOptions(l2=0.05, epochs=5))
    assert np.max(np.abs(sgd.coef_ * x.std(axis=0) / y.std() - theta)) <= 1e-3


def test_lbfgs_converges_to_the_ols_solution(data):
    x, y, ref = data
    model = streamreg.fit(x, y, solver="lbfgs", sgd=SGDOptions(tol=1e-9))
    assert errors(model, ref, x, y)[0] <= 1e-8
    record = model.optimizer_
    assert record["converged"] and record["gradient_norm"] <= 1e-9
    assert 1 <= record["iterations"] <= 50
    assert record["passes"] == 1 + record["steps"]  # one pass per function evaluation
    assert len(record["history"]["iteration"]) == record["iterations"] + 1


# ---------------------------------------------------------------------- the article
@pytest.mark.parametrize(
    "example, truth",
    [
        ("study_hours", {"hours": 0.5, "intercept": 8.0}),
        ("hours_food", {"hours": 5.0, "food": 2.0, "intercept": 10.0}),
    ],
)
def test_article_examples_by_sgd_and_the_exact_solver_agree(example, truth):
    folder = f"data/{example}"
    exact = streamreg.fit(folder, target="score", solver=EXACT)
    for solver in ("sgd", "newton", "lbfgs"):
        model = streamreg.fit(
            folder, target="score", solver=solver, sgd=SGDOptions(tol=1e-9, epochs=200)
        )
        assert model.converged_, solver
        np.testing.assert_allclose(model.coef_, exact.coef_, rtol=1e-7)
        assert model.intercept_ == pytest.approx(exact.intercept_, rel=1e-7)
    # Both recover the article's line within the noise (three standard errors).
    for name, value in truth.items():
        j = 0 if name == "intercept" else 1 + list(exact.feature_names_in_).index(name)
        assert abs(exact.params.iloc[j] - value) <= 3 * exact.bse.iloc[j]


# ---------------------------------------------------------------------- reproducibility
def test_seeded_runs_are_identical_on_one_and_two_workers(client):
    distributed = pytest.importorskip("distributed")
    x, y = generated(n=20_000)
    frame = pd.DataFrame(x, columns=[f"x{j}" for j in range(10)]).assign(y=y)
    ddf = dd.from_pandas(frame, npartitions=4)
    options = SGDOptions(epochs=3, seed=7, tol=0.0)
    two = streamreg.fit(ddf, target="y", solver="sgd", sgd=options, client=client)
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0", host="127.0.0.1"
    ) as cluster:
        with distributed.Client(cluster, set_as_default=False) as one_worker:
            one = streamreg.fit(ddf, target="y", solver="sgd", sgd=options, client=one_worker)
    local = streamreg.fit(ddf, target="y", solver="sgd", sgd=options)  # the local scheduler
    np.testing.assert_array_equal(one.coef_, two.coef_)  # bit for bit
    assert one.intercept_ == two.intercept_
    assert one.optimizer_["history"] == two.optimizer_["history"]
    # This process may run multithreaded BLAS where the workers run one thread: the same
    # steps, but the first pass's sums may round differently in the last bit.
    np.testing.assert_allclose(local.coef_, two.coef_, rtol=1e-12)
    other_seed = streamreg.fit(
        ddf, target="y", solver="sgd", sgd=SGDOptions(epochs=3, seed=8, tol=0.0)
    )
    assert not np.array_equal(other_seed.coef_, local.coef_)  # the seed does steer the shuffles


def test_parquet_read_by_workers_equals_the_local_fit(client, tmp_path):
    x, y = generated(n=30_000)
    for i in range(3):
        rows = slice(i * 10_000, (i + 1) * 10_000)
        write_xy(tmp_path / f"part-{i}.parquet", x[rows], y[rows], row_group_size=4096)
    options = SGDOptions(epochs=3, seed=1)
    local = streamreg.fit(tmp_path, target="y", solver="sgd", sgd=options, batch_size=5000)
    remote = streamreg.fit(
        tmp_path, target="y", solver="sgd", sgd=options, batch_size=5000, client=client
    )
    np.testing.assert_allclose(local.coef_, remote.coef_, rtol=1e-12)  # see the test above
    assert local.optimizer_["steps"] == remote.optimizer_["steps"]
    lbfgs = streamreg.fit(tmp_path, target="y", solver="lbfgs", client=client)
    exact = streamreg.fit(tmp_path, target="y", solver=EXACT)
    assert errors(lbfgs, exact, x, y)[0] <= 1e-5


def test_dask_arrays_with_unknown_chunks(data):
    x, y, _ = data
    n = 20_000
    X = da.from_array(x[:n], chunks=(3000, 10))
    Y = da.from_array(y[:n], chunks=3000)
    model = streamreg.fit(X, Y, solver="sgd", sgd=SGDOptions(epochs=4))
    ref = streamreg.fit(x[:n], y[:n], solver=EXACT)
    assert errors(model, ref, x[:n], y[:n])[0] <= 1e-3
    assert list(model.feature_names_in_) == [f"x{j}" for j in range(10)]


# ---------------------------------------------------------------------- honest convergence
def test_divergence_is_an_error_in_words(data):
    x, y, _ = data
    with pytest.raises(
        DivergenceError, match=r"sgd diverged: .*learning rate 50.*smaller learning rate"
    ):
        streamreg.fit(x, y, solver="sgd", sgd=SGDOptions(learning_rate=50.0))
    with pytest.raises(DivergenceError, match="non-finite"):
        streamreg.fit(x, y, solver="sgd", sgd=SGDOptions(learning_rate=1e6, minibatch=8))
    est = StreamingLinearRegression(solver="sgd", sgd={"learning_rate": 1e6, "minibatch": 8})
    with pytest.raises(DivergenceError):
        est.partial_fit(x[:5000], y[:5000])
    assert not hasattr(est, "coef_")  # never NaN coefficients


def test_stopping_rules_are_recorded(data):
    x, y, _ = data
    budget = streamreg.fit(x, y, solver="sgd", sgd=SGDOptions(epochs=2, tol=1e-12))
    assert (
        not budget.converged_ and "budget of 2 epochs ran out" in budget.optimizer_["stop_reason"]
    )
    assert any("did not converge" in w for w in budget.warnings_)
    loose = streamreg.fit(x, y, solver="sgd", sgd=SGDOptions(epochs=20, tol=0.0, loss_rtol=1e-3))
    assert loose.converged_ and "loss_rtol" in loose.optimizer_["stop_reason"]
    early = streamreg.fit(
        x, y, solver="sgd", sgd=SGDOptions(epochs=40, tol=0.0, holdout=0.2, patience=2, seed=3)
    )
    record = early.optimizer_
    assert record["converged"] and record["stop_reason"].startswith("early stopping")
    assert record["iterations"] < 40
    assert record["holdout_rows"] == pytest.approx(0.2 * len(y), rel=0.05)
    assert early.n_samples_ + record["holdout_rows"] == len(y)
    held = record["history"]["validation_loss"]
    assert len(held) == record["iterations"] + 1 and min(held) < held[0]
    steps = streamreg.fit(
        x[:5000], y[:5000], solver="sgd", sgd=SGDOptions(epochs=2, tol=0.0, record_steps=True)
    )
    assert (
        len(steps.optimizer_["step_loss"]) == steps.optimizer_["steps"] == 2 * 20
    )  # ⌈5000/256⌉ a pass


def test_collinear_columns_are_refused_or_dropped_like_the_exact_solvers(data):
    x, y, _ = data
    n = 5000
    xc = np.column_stack([x[:n, :3], x[:n, 0] + 2 * x[:n, 1]])
    with pytest.raises(CollinearityError, match="x3"):
        streamreg.fit(xc, y[:n], solver="sgd")
    model = streamreg.fit(xc, y[:n], solver="newton", drop_collinear=True)
    assert model.aliased_ == ["x3"] and np.isnan(model.coef_[3])
    np.testing.assert_allclose(
        model.coef_[:3], streamreg.fit(x[:n, :3], y[:n], solver=EXACT).coef_, rtol=1e-9
    )


@pytest.mark.parametrize(
    "options, words",
    [
        (dict(learning_rate=-1.0), "learning_rate must be a number > 0; got -1.0"),
        (
            dict(schedule="cosine"),
            "schedule must be one of constant, invscaling, step; got 'cosine'",
        ),
        (dict(momentum=1.0), "momentum must be a number in [0, 1); got 1.0"),
        (dict(holdout=1.5), "holdout must be a number in [0, 1); got 1.5"),
        (dict(minibatch=0), "minibatch must be an integer ≥ 1; got 0"),
        (dict(optimizer="adam", momentum=0.9), "momentum must be 0 with optimizer='adam'"),
        (dict(rate=0.1), "unknown sgd option 'rate'"),
    ],
)
def test_bad_options_are_named(data, options, words):
    x, y, _ = data
    with pytest.raises(
        InputError, match=words.replace("(", r"\(").replace("[", r"\[").replace(")", r"\)")
    ):
        streamreg.fit(x[:100], y[:100], solver="sgd", sgd=options)


def test_sgd_options_need_a_gradient_solver(data):
    x, y, _ = data
    with pytest.raises(InputError, match="sgd options apply to the gradient solvers"):
        streamreg.fit(x[:100], y[:100], solver="qr", sgd=SGDOptions())


# ---------------------------------------------------------------------- the model file
def test_model_json_round_trip_and_validation(data, tmp_path):
    x, y, _ = data
    model = streamreg.fit(x[:10_000], y[:10_000], solver="sgd", sgd=SGDOptions(epochs=3, l2=0.01))
    path = tmp_path / "model.json"
    model.save(path)
    back = streamreg.load(path)
    assert back.optimizer_ == model.optimizer_
    np.testing.assert_array_equal(back.predict(x[:50]), model.predict(x[:50]))
    assert np.isnan(back.bse).all()  # penalized: inference unavailable, saved as null
    saved = json.loads(path.read_text())
    assert saved["optimizer"]["options"]["l2"] == 0.01 and saved["optimizer"]["solver"] == "sgd"
    saved["optimizer"]["history"]["loss"].pop()
    path.write_text(json.dumps(saved))
    with pytest.raises(ModelFormatError, match="history 'loss'"):
        streamreg.load(path)
    exact = streamreg.fit(x[:1000], y[:1000], solver="cholesky").to_dict()
    del exact["optimizer"]  # files written before the gradient solvers existed
    assert streamreg.LinearModel.from_dict(exact).optimizer_ is None


def test_inference_is_ols_at_the_sgd_estimate(data):
    x, y, ref = data
    model = streamreg.fit(x, y, solver="sgd", sgd=SGDOptions(epochs=5))
    np.testing.assert_allclose(model.bse, ref.bse, rtol=1e-3)
    assert model.ssr_ >= ref.ssr_ * (1 - 1e-12)  # SSR at the estimate, never below the optimum
    assert model.ssr_ == pytest.approx(ref.ssr_, rel=1e-5)


# ---------------------------------------------------------------------- the estimator (online)
def test_partial_fit_takes_one_sgd_pass_per_chunk(data):
    x, y, ref = data
    est = StreamingLinearRegression(solver="sgd", batch_size=4096)
    chunk = 10_000
    for k, start in enumerate(range(0, len(y), chunk)):
        assert est.partial_fit(x[start : start + chunk], y[start : start + chunk]) is est
        assert est.model_.n_iter_ == k + 1
        assert est.model_.optimizer_["steps"] == (k + 1) * (
            16 + 16 + 8
        )  # blocks of 4096, 4096, 1808 rows
    assert est.n_samples_seen_ == len(y)
    assert errors(est.model_, ref, x, y)[0] <= 2e-3
    # fit, then partial_fit continues from the fitted coefficients
    fitted = StreamingLinearRegression(solver="sgd", sgd={"epochs": 3}).fit(x, y)
    fitted.partial_fit(x[:chunk], y[:chunk])
    assert fitted.model_.n_iter_ == fitted.model_.optimizer_["history"]["iteration"][-1]
    assert errors(fitted.model_, ref, x, y)[0] <= 2e-3


def test_partial_fit_solvers(data):
    x, y, _ = data
    for solver in ("newton", "lbfgs"):
        with pytest.raises(InputError, match=f"partial_fit cannot use solver='{solver}'"):
            StreamingLinearRegression(solver=solver).partial_fit(x[:100], y[:100])
    with pytest.raises(InputError, match="first chunk"):
        StreamingLinearRegression(solver="sgd").partial_fit(x[:1], y[:1])
    est = StreamingLinearRegression(solver="sgd")
    with pytest.warns(UnsolvedWarning, match="took its SGD pass over the 5 rows"):
        est.partial_fit(x[:5], y[:5])  # 5 rows, 11 coefficients: steps taken, no model yet
    assert not hasattr(est, "coef_")
    est.partial_fit(x[5:2000], y[5:2000])
    assert est.n_samples_seen_ == 2000 and est.model_.n_iter_ == 2


# ---------------------------------------------------------------------- the command line
def test_cli_history_and_plot(tmp_path):
    model_path, history = tmp_path / "model.json", tmp_path / "history.csv"
    result = subprocess.run(
        [
            "streamreg",
            "fit",
            "data/hours_food",
            "--target",
            "score",
            "--solver",
            "sgd",
            "--epochs",
            "300",
            "--tol",
            "1e-9",
            "--history",
            str(history),
            "--out",
            str(model_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "  sgd: " in result.stdout and "converged: the gradient norm" in result.stdout
    lines = history.read_text().splitlines()
    model = streamreg.load(model_path)
    assert lines[0] == "iteration,loss,gradient_norm,learning_rate"
    assert len(lines) == 1 + model.n_iter_ + 1
    assert float(lines[1].split(",")[1]) == pytest.approx(0.5)  # θ = 0: ½ var(ỹ)
    pytest.importorskip("matplotlib")
    png = tmp_path / "loss.png"
    result = runner.invoke(app, ["plot", str(model_path), "--out", str(png)])
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_divergence_and_misuse_exit_2(tmp_path):
    out = tmp_path / "model.json"
    result = subprocess.run(
        [
            "streamreg",
            "fit",
            "data/study_hours",
            "--target",
            "score",
            "--solver",
            "sgd",
            "--learning-rate",
            "50",
            "--minibatch",
            "5",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("streamreg: error: sgd diverged: the training loss grew")
    assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()
    for args, words in [
        (["--momentum", "0.9"], "--momentum applies to the gradient solvers"),
        (["--history", str(tmp_path / "h.csv")], "--history needs a gradient solver"),
        (
            ["--solver", "sgd", "--schedule", "cosine"],
            "'cosine' is not one of constant, invscaling, step",
        ),
        (
            ["--solver", "newton", "--step-history", str(tmp_path / "s.csv")],
            "--step-history needs --solver sgd",
        ),
    ]:
        result = runner.invoke(app, ["fit", "data/study_hours", "--target", "score", *args])
        assert result.exit_code == 2 and words in result.output, result.output


def test_plot_of_a_loss_curve_needs_a_history_or_one_feature(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "m.json"
    streamreg.fit("data/hours_food", target="score").save(path)
    args = ["plot", str(path), "--out", str(tmp_path / "x.png"), "--kind", "loss"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "no loss curve or fitted line" in result.output
    assert not (tmp_path / "x.png").exists()
    # By default such a model gets its coefficients drawn instead (no data needed).
    result = runner.invoke(app, args[:4])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "x.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
