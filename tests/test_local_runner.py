"""A local fit of every solver runs without dask: the local runner is the engine's only path
there (dask is imported by ``engine/dask_runner.py`` alone, when a fit asks for workers)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from streamreg.solvers import SOLVER_NAMES

SCRIPT = """
import json, sys
import numpy as np, pandas as pd, pyarrow as pa, pyarrow.parquet as pq
import streamreg
rng = np.random.default_rng(0)
x = rng.normal(size=(400, 3))
frame = pd.DataFrame(x, columns=["a", "b", "c"])
frame["y"] = x @ [1.0, -2.0, 0.5] + 3 + rng.normal(size=400)
path = sys.argv[2] + "/data.parquet"
pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=100)
model = streamreg.fit(path, target="y", solver=sys.argv[1], batch_size=64)
print(json.dumps({"dask": sorted(m for m in sys.modules if m.split(".")[0] in
                                 ("dask", "distributed")),
                  "intercept": float(model.intercept_)}))
"""


@pytest.mark.parametrize("solver", SOLVER_NAMES)
def test_a_local_fit_never_imports_dask(solver, tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, solver, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["dask"] == []
    assert abs(report["intercept"] - 3) < 0.5  # the fit really ran
