"""Golden files: what streamreg writes must not change when its code is reorganized.

Each case fits fixed, seeded data and saves a model, a state or a job's store;
the JSON must equal the file committed under ``tests/golden/`` byte for byte,
after the two things that differ between machines and runs are replaced by
placeholders: the temporary folder's path and the clock (job run records and
file modification times). The files were written by the code *before* the
package was split into layers (issue: one house), so this test proves that the
refactor changed nothing a user can see in a saved file.

Regenerate (only when a format change is intended, and say so in the commit)::

    STREAMREG_REGENERATE_GOLDEN=1 pytest tests/test_golden.py
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import streamreg
from streamreg.jobs import run_job
from streamreg.jobs.spec import parse_job

GOLDEN = Path(__file__).parent / "golden"
REGENERATE = os.environ.get("STREAMREG_REGENERATE_GOLDEN") == "1"
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d|Z)?")


def _data(folder: Path) -> list[str]:
    """Three files, weights, a cluster column, offsets, ~1% nulls: y = 1 + 2·a − 0.5·b + 3·c."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(3):
        rng = np.random.default_rng([20261129, i])
        n = 700 + 50 * i
        a = rng.normal(size=n)
        b = rng.normal(size=n) * 10 + 1e4
        c = rng.uniform(-1, 1, size=n)
        y = 1 + 2 * a - 0.5 * b + 3 * c + rng.normal(size=n)
        table = pa.table(
            {
                "a": pa.array(a, mask=rng.random(n) < 0.01),
                "b": b,
                "c": c,
                "y": y,
                "w": rng.uniform(0.5, 2.0, size=n),
                "g": rng.integers(0, 30, size=n),
            }
        )
        path = folder / f"part-{i}.parquet"
        pq.write_table(table, path, row_group_size=200)
        paths.append(str(path.relative_to(folder.parent)))
    return paths


FITS = {
    "cholesky": dict(solver="cholesky"),
    "qr": dict(solver="qr"),
    "exact": dict(solver="exact"),
    "auto": dict(solver="auto"),
    "weighted": dict(solver="cholesky", weight="w"),
    "no_intercept": dict(solver="qr", fit_intercept=False),
    "hc3": dict(solver="auto", cov_type="HC3"),
    "cluster": dict(solver="exact", cov_type="cluster:g", weight="w"),
    "sgd": dict(solver="sgd", sgd={"epochs": 3, "seed": 7}),
    "sgd_holdout": dict(solver="sgd", sgd={"epochs": 4, "holdout": 0.2, "momentum": 0.9}),
    "newton": dict(solver="newton"),
    "lbfgs": dict(solver="lbfgs", sgd={"l2": 0.01}),
}


_STATE_NAME = re.compile(r"[0-9a-f]{32}\.json")


def _normalized(text: str, root: Path) -> str:
    # State files are named by a hash of the file's URL and modification time, both of which
    # differ between runs.
    text = _STATE_NAME.sub("<state>.json", text.replace(str(root), "<root>"))
    return _TIME.sub("<time>", text)


def _ours_and_golden(name: str, text: str, root: Path) -> tuple[str, str]:
    """``text`` normalized, and the committed golden file it must equal (written first with
    STREAMREG_REGENERATE_GOLDEN=1)."""
    text = _normalized(text, root)
    path = GOLDEN / name
    if REGENERATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"{path} is missing; regenerate with STREAMREG_REGENERATE_GOLDEN=1"
    return text, path.read_text()


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("case", sorted(FITS))
def test_saved_model_is_byte_identical(workdir, case):
    files = _data(workdir / "data")
    model = streamreg.fit(files, target="y", features=["a", "b", "c"], batch_size=300, **FITS[case])
    model.save(workdir / "model.json")
    ours, golden = _ours_and_golden(
        f"model-{case}.json", (workdir / "model.json").read_text(), workdir
    )
    assert ours == golden, f"model-{case}.json differs from the golden file"


def test_saved_state_is_byte_identical(workdir):
    files = _data(workdir / "data")
    model = streamreg.fit(
        files, target="y", features=["a", "b", "c"], solver="cholesky", batch_size=300
    )
    model.state_.save(workdir / "state.json")
    ours, golden = _ours_and_golden(
        "state-moments.json", (workdir / "state.json").read_text(), workdir
    )
    assert ours == golden, "state-moments.json differs from the golden file"


@pytest.mark.parametrize("solver", ["exact", "cholesky"])
def test_job_store_is_byte_identical(workdir, solver):
    _data(workdir / "data")
    text = (
        'inputs = ["data/"]\n[model]\ntarget = "y"\nfeatures = ["a", "b", "c"]\nsolver = '
        f'"{solver}"\n'
        '[state]\nlocation = "state/"\ncheckpoint_row_groups = 1\nbatch_size = 300\n'
        '[outputs]\nmodel = "out/model.json"\n'
    )
    (workdir / "job.toml").write_text(text)
    result = run_job(parse_job(text, path=str(workdir / "job.toml")))
    assert result.status == "published"
    outputs = {f"job-{solver}/model.json": (workdir / "out" / "model.json").read_text()}
    manifest = json.loads((workdir / "state" / "manifest.json").read_text())
    for run in manifest.get("runs", []):
        run.pop("seconds", None)
    # The digest of the published entries covers their URLs and modification times.
    assert re.fullmatch(r"[0-9a-f]{64}", manifest["published"].pop("digest"))
    outputs[f"job-{solver}/manifest.json"] = json.dumps(manifest, indent=1, sort_keys=True)
    for path in sorted((workdir / "state" / "states").glob("*.json")):
        entry = next(e for e in manifest["files"] if path.name in json.dumps(e))
        outputs[f"job-{solver}/state-{Path(entry['url']).name}.json"] = path.read_text()
    differing = [
        name
        for name, text in outputs.items()
        if len(set(_ours_and_golden(name, text, workdir))) > 1
    ]
    assert len(outputs) == 2 + len(manifest["files"]) and not differing, differing
