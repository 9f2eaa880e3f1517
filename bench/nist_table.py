"""The NIST StRD table: min LRE over the parameters for every solver, next to the ceiling and numpy.

Each data set is written to Parquet and streamed in batches of 7 rows, as in
``tests/test_nist_solvers.py`` (which asserts the targets; this prints the numbers).

    python bench/nist_table.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from oracles import nist  # noqa: E402

import streamreg  # noqa: E402


def score(path: Path, case, solver: str) -> str:
    try:
        model = streamreg.fit(
            path, target="y", fit_intercept=case.fit_intercept, batch_size=7, solver=solver
        )
    except streamreg.StreamregError:
        return "refused"
    est = np.r_[model.intercept_, model.coef_] if case.fit_intercept else model.coef_
    used = f" ({model.solver_})" if solver == "auto" else ""
    return f"{nist.lre(est, case.params):.1f}{used}"


def main() -> None:
    print(
        f"{'dataset':<10}{'ceiling':>8}{'numpy':>7}  "
        f"{'auto':<16}{'cholesky':>9}{'qr':>7}{'exact':>7}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name in nist.NAMES:
            case = nist.load(name)
            path = Path(tmp) / f"{name}.parquet"
            columns = {n: case.x[:, j] for j, n in enumerate(case.feature_names)}
            pq.write_table(pa.table({**columns, "y": case.y}), path)
            row = {s: score(path, case, s) for s in ("auto", "cholesky", "qr", "exact")}
            print(
                f"{name:<10}{nist.CEILING[name]:>8}{nist.NUMPY_LSTSQ[name]:>7}  {row['auto']:<16}"
                f"{row['cholesky']:>9}{row['qr']:>7}{row['exact']:>7}"
            )


if __name__ == "__main__":
    main()
