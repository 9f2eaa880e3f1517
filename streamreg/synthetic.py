r"""Synthetic regression data in the spirit of the original article.

Rows follow ``y = b + Σⱼ βⱼ xⱼ + ε`` with ``xⱼ ~ N(meanⱼ + offset, sdⱼ²)`` and
``ε ~ N(0, noise²)``, drawn from a seeded generator one row group at a time
(memory stays one row group wide at any size). The truth is written beside
the data as ``_truth.json`` (the leading underscore keeps readers from taking
it for data).

>>> import tempfile
>>> out = tempfile.mkdtemp()
>>> truth = generate(
...     out, rows=100, coef=[0.5], intercept=8.0, names=["hours"], target="score", seed=1
... )
>>> truth["coef"], truth["rows"]
({'hours': 0.5}, 100)
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import InputError, parameter
from .io.atomic import atomic_path, write_text_atomic

_OUR_FILES = re.compile(r"part-\d{5}\.parquet|_truth\.json")


def generate(
    out_dir: str | os.PathLike,
    *,
    rows: int,
    coef: Sequence[float] | None = None,
    n_features: int | None = None,
    intercept: float = 1.0,
    noise: float = 1.0,
    means: Sequence[float] | None = None,
    sds: Sequence[float] | None = None,
    offset: float = 0.0,
    names: Sequence[str] | None = None,
    target: str = "y",
    files: int = 1,
    row_group_size: int = 131072,
    seed: int = 0,
    on_rows: Callable[[int], None] | None = None,
    force: bool = False,
) -> dict:
    """Write ``files`` Parquet files with ``rows`` rows in all to ``out_dir``; return the truth.

    ``on_rows(m)`` is called after each row group of ``m`` rows is written (for progress).
    ``out_dir`` must be empty or new: files beside earlier ones would mix two data sets. With
    ``force`` the data files of an earlier run there (``part-NNNNN.parquet``, ``_truth.json``)
    are removed first; other files are left alone."""
    if rows < 1 or files < 1 or row_group_size < 1:
        raise InputError("rows, files and row-group size must be positive.")
    if noise < 0:
        raise InputError(f"noise must be zero or positive; got {noise}.")
    if coef is not None and n_features is not None and len(coef) != n_features:
        raise InputError(
            f"{parameter('n_features', n_features)} asks for {n_features} features but "
            f"{parameter('coef')} gives {len(coef)} slopes; give one of them, or make them agree."
        )
    if coef is None:
        p = n_features if n_features is not None else (len(names) if names else 3)
        coef = [float(j + 1) for j in range(p)]
    coef = [float(c) for c in coef]
    p = len(coef)
    names = list(names) if names else [f"x{j + 1}" for j in range(p)]
    means = [float(m) for m in means] if means else [0.0] * p
    sds = [float(s) for s in sds] if sds else [1.0] * p
    for label, values in (("names", names), ("means", means), ("sds", sds)):
        if len(values) != p:
            raise InputError(f"{label} has {len(values)} entries for {p} coefficients.")
    if target in names or len(set(names)) != p:
        raise InputError("feature names must be distinct and differ from the target name.")
    out = _prepared_folder(Path(out_dir), force)
    rng = np.random.default_rng(seed)
    beta = np.array(coef)
    per_file = [rows // files + (1 if i < rows % files else 0) for i in range(files)]
    schema = pa.schema([(n, pa.float64()) for n in [*names, target]])
    written = []
    for index, count in enumerate(per_file):
        path = out / f"part-{index:05d}.parquet"
        with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema) as writer:
            left = count
            while left > 0:
                m = min(left, row_group_size)
                x = rng.standard_normal((m, p)) * np.array(sds) + (np.array(means) + offset)
                y = (
                    intercept
                    + (x - offset) @ beta
                    + offset * beta.sum()
                    + noise * rng.standard_normal(m)
                )
                cols = [pa.array(x[:, j]) for j in range(p)] + [pa.array(y)]
                writer.write_table(pa.Table.from_arrays(cols, schema=schema), row_group_size=m)
                left -= m
                if on_rows is not None:
                    on_rows(m)
        written.append({"path": path.name, "rows": count})
    truth = {
        "coef": dict(zip(names, coef)),
        "intercept": float(intercept),
        "noise_sd": float(noise),
        "means": dict(zip(names, [m + offset for m in means])),
        "sds": dict(zip(names, sds)),
        "target": target,
        "rows": int(rows),
        "seed": int(seed),
        "files": written,
    }
    write_text_atomic(out / "_truth.json", json.dumps(truth, indent=1) + "\n")
    return truth


def _prepared_folder(out: Path, force: bool) -> Path:
    """``out``, created if need be; refused if it holds anything (unless ``force``: then the
    files an earlier :func:`generate` wrote there are removed)."""
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} is a file; generate writes a folder of Parquet files.")
    try:
        out.mkdir(parents=True, exist_ok=True)
        present = sorted(p.name for p in out.iterdir())
        if present and not force:
            raise InputError(
                f"{out} is not empty ({len(present)} entries, such as {present[0]}): new files "
                "beside them would mix two data sets; choose an empty folder, or pass "
                f"{parameter('force', True)} to replace the data files generated there."
            )
        for name in present:
            if _OUR_FILES.fullmatch(name):
                (out / name).unlink()
    except OSError as exc:
        raise InputError(f"cannot write to {out}: {exc.strerror or exc}.") from exc
    return out
