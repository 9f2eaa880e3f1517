"""``streamreg demo``: replay the original article's examples from the bundled data/."""

from __future__ import annotations

import json
from pathlib import Path

from .errors import InputError
from .fitting import fit
from .report import fit_report

EXAMPLES = [
    ("study_hours", "score", "One feature: study hours → test score (the article's y = 0.5x + 8)."),
    (
        "hours_food",
        "score",
        "Two features: hours and food → score (the article's y = 5x₁ + 2x₂ + 10).",
    ),
]
QUESTION_HOURS = 11.0


def find_data_dir(explicit: Path | None = None) -> Path:
    candidates = (
        [explicit]
        if explicit
        else [Path(__file__).resolve().parents[1] / "data", Path.cwd() / "data"]
    )
    for candidate in candidates:
        if candidate is not None and all((candidate / name).is_dir() for name, _, _ in EXAMPLES):
            return candidate
    where = explicit or "the repository's data/ folder"
    raise InputError(
        f"the bundled examples were not found in {where}; pass --data DIR, a folder holding "
        + " and ".join(f"{name}/" for name, _, _ in EXAMPLES)
        + "."
    )


def run_demo(data_dir: Path | None = None, *, as_json: bool = False) -> str:
    root = find_data_dir(data_dir)
    results = []
    blocks = []
    for name, target, title in EXAMPLES:
        folder = root / name
        truth = json.loads((folder / "_truth.json").read_text())
        model = fit(folder, target=target)
        results.append(
            {
                "example": name,
                "coefficients": model.coefficients(),
                "intercept": model.intercept_,
                "r2": model.r2_,
                "rmse": model.rmse_,
                "rows": model.n_samples_,
                "truth": truth,
            }
        )
        blocks.append(
            f"{title}\n$ streamreg fit {_shown(folder)} --target {target}\n"
            + fit_report(model, truth=truth)
        )
        if name == "study_hours":
            expected = model.intercept_ + model.coef_[0] * QUESTION_HOURS
            results[-1]["score_at_11_hours"] = expected
            blocks[-1] += (
                f"\n  The article's question, 11 hours of study a week: expected score "
                f"{expected:.2f}"
            )
    if as_json:
        return json.dumps(results, indent=1)
    return (
        "\n\n".join(blocks)
        + "\n\nEverything above was read in streaming batches; try it at scale:\n"
        "  streamreg generate big/ --rows 10000000 --features 20 --files 8\n"
        "  streamreg fit big/ --target y --out model.json"
    )


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
