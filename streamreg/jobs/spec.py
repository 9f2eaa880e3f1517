"""The job spec: a TOML file naming inputs, model, state location and outputs, validated.

``streamreg run job.toml`` reads it with :func:`load_job`; every mistake is one
sentence naming the key and what was expected (exit code 2). Relative local
paths are taken relative to the folder of the job file, so a scheduler may
start the job from anywhere. ``streamreg job init`` writes :data:`EXAMPLE`.

>>> job = parse_job(EXAMPLE, path="job.toml")
>>> job.target, job.solver, job.checkpoint_row_groups, job.interval
('y', 'cholesky', 8, 60.0)
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field, replace

from ..choices import ON_CHANGE
from ..cv import fold_assignment
from ..design import NULL_POLICIES
from ..errors import InputError
from ..io.listing import is_url
from ..model.penalty import SELECTIONS
from ..solvers import CLOSED_FORM_SOLVERS
from ..solvers.penalized import check_alpha, check_l1_ratio, checked_alphas
from .toml_table import TomlTable, check_choice, parse_duration

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# A job keeps one kind of state per file, so it takes the closed-form solvers; "auto" keeps
# cholesky's states and, unable to read every file again, warns where a fit would switch.
JOB_SOLVERS = ("auto", *CLOSED_FORM_SOLVERS)

EXAMPLE = """\
# A streamreg job. Run it from cron, Airflow or a Kubernetes CronJob with
#
#     streamreg run job.toml            (add --dry-run to see what it would do)
#
# Each run folds in only the Parquet files it has not seen yet, refits, and
# publishes the new model; a run that dies at any instant is finished by the
# next one, with no row lost and none counted twice. Relative paths are
# relative to this file.

# Input files: Parquet files, directories (read recursively; key=value folders
# become columns), globs, or URLs such as "s3://bucket/events/".
inputs = ["data/"]

[model]
target = "y"
# features = ["x1", "x2"]     # default: every numeric column but target, weight and exclude
# exclude = ["id"]            # columns left out of the default features
# weight = "w"                # weighted least squares
# formula = "y ~ x1 + np.log(x2) + C(region)"  # instead of target/features
# categorical = ["store"]     # integer codes to treatment-code (text features already are)
# reference = { region = "north" }  # reference levels (default: the first, sorted)
# max_levels = 1000           # refuse a category with more levels
fit_intercept = true
nulls = "drop"                # rows with a null/NaN in a used column: "drop" (counted) or "error"
solver = "cholesky"           # "cholesky" (fastest), "qr", "exact" (bit-identical however split),
                              # or "auto" (cholesky, with a warning when too ill-conditioned)
drop_collinear = false        # collinear columns get no coefficient instead of an error
# alpha = 0.1                 # a penalized fit: ridge (l1_ratio = 0), lasso (1) or elastic net
# l1_ratio = 1.0
# standardize = false         # penalize the standardized coefficients (glmnet's default)

# [cv]                        # choose alpha by K-fold cross-validation after every run: each
# folds = 5                   # file keeps one state per fold beside its plain state
# l1_ratio = [0.5, 1.0]
# alphas = 100                # a count, or the grid itself
# fold_key = "customer_id"    # hash this column into the folds (or fold_column = "fold";
#                             # neither: a hash of file and row position)
# select = "min"              # or "1se": the largest alpha within one standard error

[state]
# A folder or an object-store prefix ("s3://bucket/jobs/sales/"): manifest.json,
# one state per ingested file (states/), checkpoints (partial/) and the lock.
location = "state/"
checkpoint_row_groups = 8     # inside a big file, checkpoint every 8 row groups (0: per file only)
# batch_size = 65536          # rows per record batch (default: about 16 MiB of float64)

[outputs]
model = "out/model.json"      # also written as out/model.v000001.json, v000002, ... per version
keep_versions = 10            # numbered versions to keep (0: all)
# summary = "out/summary.txt" # the results table, as text
# predictions = "out/predictions.parquet"  # the rows new in a run, predicted by its model
# keep = ["id"]               # input columns copied into the predictions

[run]
on_change = "error"           # a file that changed since it was ingested: "error" or "replace"
# window = "30d"              # keep only files from the last 30 days (units s, m, h, d, w)
# window_key = "date"         # ... dated by this Hive partition (date=2026-01-31/), not by mtime
interval = "60s"              # with --watch: how often to look for new files
# scheduler = "tcp://scheduler:8786"  # new files are read by this Dask cluster's workers

# [storage]                   # fsspec options for every URL above, e.g. an S3-compatible server:
# endpoint_url = "http://127.0.0.1:9000"
"""


@dataclass(frozen=True)
class JobSpec:
    """A validated job; paths are absolute (or URLs)."""

    path: str
    inputs: tuple[str, ...]
    target: str
    state: str
    model: str
    features: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()
    weight: str | None = None
    fit_intercept: bool = True
    nulls: str = "drop"
    solver: str = "cholesky"
    drop_collinear: bool = False
    batch_size: int | None = None
    checkpoint_row_groups: int = 8
    summary: str | None = None
    predictions: str | None = None
    keep: tuple[str, ...] = ()
    keep_versions: int = 10
    on_change: str = "error"
    window: float | None = None  # seconds
    window_text: str | None = None
    window_key: str | None = None
    interval: float = 60.0  # seconds
    storage: dict = field(default_factory=dict)
    scheduler: str | None = None  # a Dask scheduler whose workers read the new files
    formula: str | None = None
    categorical: tuple[str, ...] = ()
    reference: dict = field(default_factory=dict)
    max_levels: int = 1000
    alpha: float | None = None  # a penalized fit (streamreg.solvers.penalized)
    l1_ratio: float = 1.0
    standardize: bool = False
    cv: dict | None = None  # [cv]: folds, assignment, l1_ratios, alphas, eps, select

    @property
    def encoded(self) -> bool:
        """Whether the job's model asks for an encoded design (its levels fixed at the first
        run; see :mod:`streamreg.jobs.levels`)."""
        return bool(self.formula or self.categorical or self.reference)

    def with_options(
        self,
        *,
        on_change: str | None = None,
        window: str | None = None,
        interval: str | None = None,
    ) -> JobSpec:
        """The job with command-line overrides (validated like the file's keys)."""
        changes: dict = {}
        if on_change is not None:
            changes["on_change"] = check_choice(on_change, ON_CHANGE, "--on-change")
        if window is not None:
            changes["window"] = parse_duration(window, "--window")
            changes["window_text"] = window
        if interval is not None:
            changes["interval"] = parse_duration(interval, "--interval")
        return replace(self, **changes)


def load_job(path: str | os.PathLike) -> JobSpec:
    """Read and validate a job file."""
    path = str(path)
    try:
        with open(path, "rb") as handle:
            text = handle.read().decode("utf-8")
    except FileNotFoundError:
        raise InputError(
            f"the job file {path} does not exist (streamreg job init writes an example)."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the job file {path}: {exc}.") from exc
    return parse_job(text, path=path)


def parse_job(text: str, *, path: str = "job.toml") -> JobSpec:
    """Validate the TOML ``text`` of a job file found at ``path``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path} is not valid TOML: {exc}.") from exc
    keys = TomlTable(data, path)
    base = os.path.dirname(os.path.abspath(path))

    inputs = keys.strings("inputs", required=True)
    if not inputs:
        raise InputError(f"{path}: 'inputs' must name at least one path, glob or URL.")
    model = keys.table("model", required=True)
    state = keys.table("state", required=True)
    outputs = keys.table("outputs", required=True)
    run = keys.table("run")
    storage = keys.table("storage") or {}
    cv = keys.table("cv")
    keys.done()

    m = TomlTable(model, path, "model")
    formula = m.string("formula")
    target = m.string("target", required=formula is None)
    features = m.strings("features")
    categorical = m.strings("categorical") or []
    reference = m.table("reference") or {}
    max_levels = m.integer("max_levels", 1000, minimum=1)
    exclude = m.strings("exclude") or []
    weight = m.string("weight")
    fit_intercept = m.boolean("fit_intercept", True)
    nulls = m.choice("nulls", NULL_POLICIES, "drop")
    solver = m.choice("solver", JOB_SOLVERS, "cholesky")
    drop_collinear = m.boolean("drop_collinear", False)
    alpha = m.number("alpha")
    l1_ratio = m.number("l1_ratio")
    standardize = m.boolean("standardize", False)
    m.done()
    if formula is not None and (features is not None or exclude):
        raise InputError(
            f"{path}: give 'model.formula' or 'model.features'/'model.exclude', not both."
        )
    if formula is not None and target is None:
        target = formula.split("~")[0].strip()
    bad = [k for k, v in reference.items() if not isinstance(v, (str, int, float, bool))]
    if bad:
        raise InputError(f"{path}: 'model.reference.{bad[0]}' must be a level (text or a number).")
    where = f"{path}: 'model.alpha'"
    alpha = None if alpha is None else _checked(check_alpha, alpha, where)
    if cv is not None and (alpha is not None or l1_ratio is not None):
        raise InputError(
            f"{path}: [cv] chooses the penalty, so 'model.alpha' and 'model.l1_ratio' must not "
            "be set (put l1_ratio in [cv])."
        )
    if l1_ratio is not None and alpha is None:
        raise InputError(f"{path}: 'model.l1_ratio' needs 'model.alpha' (a penalized fit).")
    if standardize and alpha is None and cv is None:
        raise InputError(f"{path}: 'model.standardize' needs 'model.alpha' or a [cv] table.")
    l1_ratio = (
        1.0 if l1_ratio is None else _checked(check_l1_ratio, l1_ratio, f"{path}: 'model.l1_ratio'")
    )
    cv = None if cv is None else _parse_cv(cv, path)
    if features is not None and not features:
        raise InputError(
            f"{path}: 'model.features' is empty; leave it out to use every numeric column."
        )

    s = TomlTable(state, path, "state")
    location = s.string("location", required=True)
    checkpoint = s.integer("checkpoint_row_groups", 8, minimum=0)
    batch_size = s.integer("batch_size", None, minimum=1)
    s.done()

    o = TomlTable(outputs, path, "outputs")
    model_out = o.string("model", required=True)
    summary = o.string("summary")
    predictions = o.string("predictions")
    keep = o.strings("keep") or []
    keep_versions = o.integer("keep_versions", 10, minimum=0)
    o.done()
    if keep and predictions is None:
        raise InputError(
            f"{path}: 'outputs.keep' names columns for the predictions, but 'outputs.predictions' "
            "is not set."
        )

    r = TomlTable(run or {}, path, "run")
    on_change = r.choice("on_change", ON_CHANGE, "error")
    window_text = r.string("window")
    window_key = r.string("window_key")
    interval = r.duration("interval", 60.0)
    scheduler = r.string("scheduler")
    r.done()
    window = (
        parse_duration(window_text, f"{path}: 'run.window'") if window_text is not None else None
    )
    if window_key is not None and window is None:
        raise InputError(f"{path}: 'run.window_key' is set but 'run.window' is not.")

    outs = [p for p in (model_out, summary, predictions) if p is not None]
    if len(set(outs)) != len(outs):
        raise InputError(
            f"{path}: the outputs model, summary and predictions must be different files."
        )
    return JobSpec(
        path=os.path.abspath(path),
        inputs=tuple(_place(p, base) for p in inputs),
        target=target,
        state=_place(location, base),
        model=_place(model_out, base),
        features=None if features is None else tuple(features),
        exclude=tuple(exclude),
        weight=weight,
        fit_intercept=fit_intercept,
        nulls=nulls,
        solver=solver,
        drop_collinear=drop_collinear,
        batch_size=batch_size,
        checkpoint_row_groups=checkpoint,
        summary=None if summary is None else _place(summary, base),
        predictions=None if predictions is None else _place(predictions, base),
        keep=tuple(keep),
        keep_versions=keep_versions,
        on_change=on_change,
        window=window,
        window_text=window_text,
        window_key=window_key,
        interval=interval,
        storage=dict(storage),
        scheduler=scheduler,
        formula=formula,
        categorical=tuple(categorical),
        reference=dict(reference),
        max_levels=max_levels,
        alpha=alpha,
        l1_ratio=l1_ratio,
        standardize=standardize,
        cv=cv,
    )


def _parse_cv(table: dict, path: str) -> dict:
    """The validated [cv] table."""
    c = TomlTable(table, path, "cv")
    folds = c.integer("folds", None, minimum=2)
    ratios = c.numbers("l1_ratio") or [1.0]
    alphas = c.get_raw("alphas")
    eps = c.number("eps")
    fold_key = c.string("fold_key")
    fold_column = c.string("fold_column")
    seed = c.integer("seed", 0, minimum=0)
    select = c.choice("select", SELECTIONS, "min")
    c.done()
    ratios = [_checked(check_l1_ratio, r, f"{path}: 'cv.l1_ratio'") for r in ratios]
    if alphas is None:
        alphas = 100
    elif isinstance(alphas, int) and not isinstance(alphas, bool):
        if alphas < 1:
            raise InputError(f"{path}: 'cv.alphas' must be at least 1, got {alphas}.")
    else:
        alphas = _checked(checked_alphas, alphas, f"{path}: 'cv.alphas'").tolist()
    if eps is not None and not 0 < eps < 1:
        raise InputError(f"{path}: 'cv.eps' must be between 0 and 1, got {eps!r}.")
    if folds is None and fold_column is None:
        folds = 5
    _checked(
        lambda _: fold_assignment(folds, fold_column=fold_column, fold_key=fold_key, seed=seed),
        None,
        f"{path}: [cv]",
    )
    return {
        "folds": folds,
        "fold_key": fold_key,
        "fold_column": fold_column,
        "seed": seed,
        "l1_ratios": ratios,
        "alphas": alphas,
        "eps": 1e-3 if eps is None else float(eps),
        "select": select,
    }


def _checked(check, value, where: str):
    """``check(value)``, its one-sentence refusal prefixed with where the value came from."""
    try:
        return check(value)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None


def _place(path: str, base: str) -> str:
    """A relative local path is relative to the job file's folder; URLs stay as they are."""
    if is_url(path):
        return path
    path = os.path.expanduser(path)
    trailing = os.sep if path.endswith(("/", os.sep)) else ""
    return os.path.normpath(os.path.join(base, path)) + trailing
