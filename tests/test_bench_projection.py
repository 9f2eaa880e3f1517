"""The scaling projection of ``bench/bench_dask.py --scaling`` against hand-computed schedules.

``project`` deals a fixed task list to single-core workers in order, each task to the worker
that frees up first (list scheduling, not an optimal packing), then adds the merge tree's
⌈log₂ T⌉ levels. Every expected value below is worked out by hand in its comment.
"""

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_dask.py"


@pytest.fixture(scope="module")
def project():
    spec = importlib.util.spec_from_file_location("bench_dask", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.project


CASES = [
    # w0: 3; w1: 1, 2, 3 → 3; two merge levels of nothing
    (([3.0, 1.0, 1.0, 1.0], 2), {"per_task": 0.0, "merge": 0.0}, 3.0),
    # in order, not packed: w0: 1, w1: 1, then w0 (first free) takes the 2 → 3 (optimal is 2)
    (([1.0, 1.0, 2.0], 2), {"per_task": 0.0, "merge": 0.0}, 3.0),
    # w0: 1.5, w1: 1.5, w0: 3.0; ⌈log₂ 3⌉ = 2 levels × (0.25 merge + 0.5 task + 1.0 transfer)
    (([1.0, 1.0, 1.0], 2), {"per_task": 0.5, "merge": 0.25, "transfer": 1.0}, 6.5),
    # one worker: no transfer; 2 + one level of 0.1 + gather 0.2 + fixed 0.3
    (
        ([1.0, 1.0], 1),
        {"per_task": 0.0, "merge": 0.1, "transfer": 5.0, "gather": 0.2, "fixed": 0.3},
        2.6,
    ),
    # one task: no merge level at all
    (([2.0], 4), {"per_task": 0.0, "merge": 9.0, "transfer": 9.0}, 2.0),
    # more workers than tasks: the longest task, then ⌈log₂ 3⌉ = 2 levels of 0.5
    (([1.0, 2.0, 1.0], 16), {"per_task": 0.0, "merge": 0.5}, 3.0),
    # 5 tasks of 1 s + 0.1 s each on 2 workers: w0 takes 3 (3.3 s); 3 levels × (0.2 + 0.1 + 0.3)
    (([1.0] * 5, 2), {"per_task": 0.1, "merge": 0.2, "transfer": 0.3}, 3.3 + 3 * 0.6),
]


@pytest.mark.parametrize(("args", "costs", "expected"), CASES)
def test_project_matches_hand_computed_list_schedules(project, args, costs, expected):
    assert project(*args, **costs) == pytest.approx(expected, rel=1e-12)


def test_equal_tasks_take_ceil_t_over_w_rounds(project):
    """T equal tasks on W workers take ⌈T/W⌉ rounds of (task + scheduling); each of the
    ⌈log₂ 13⌉ = 4 merge levels is a task of its own (its scheduling cost, no merge cost)."""
    tasks = [0.7] * 13
    walls = [project(tasks, w, per_task=0.01, merge=0.0) for w in range(1, 20)]
    expected = [-(-13 // w) * 0.71 + 4 * 0.01 for w in range(1, 20)]
    assert walls == pytest.approx(expected, rel=1e-12)
