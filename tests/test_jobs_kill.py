"""Kill test: SIGKILL a running job at random moments; the rerun must finish the work exactly.

A job over 24 files of 4 row groups each (``checkpoint_row_groups = 1`` and a
small batch, so a run lasts a few seconds and most kills land inside a file)
is started as the real console script and killed with SIGKILL at seeded
random moments — after a random number of its checkpoint/ingest log events
plus a random delay, or at a random time since its start — each time in a
fresh state folder. The job is then run again to completion, and its model
must equal the model of an uninterrupted run bit for bit (the file bytes are
compared, for the ``exact`` solver and for ``cholesky``), its manifest must
count every row exactly once, and no checkpoint or lock may be left behind.
The tally (runs, kills, kills that landed mid-file, mismatches) is printed.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
from test_jobs import write_job, write_part

import streamreg

FILES = 24
ROWS = 400  # per file, in 4 row groups of 100
ROW_GROUP = 100
BATCH = 25
KILLS = {"exact": 8, "cholesky": 4}
SEED = 20261127


def _run_to_completion(job: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["streamreg", "run", str(job), "--quiet"], capture_output=True, text=True, timeout=120
    )


def _killed_run(
    job: Path, rng: np.random.Generator, events_in_a_run: int, seconds_in_a_run: float
) -> dict:
    """Start the job, SIGKILL it at a random moment, and say where it was."""
    proc = subprocess.Popen(
        ["streamreg", "run", str(job), "--log-format", "json"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    started = time.monotonic()
    seen = 0
    if rng.random() < 2 / 3:  # after the n-th checkpoint or finished file, plus up to 20 ms
        wanted = int(rng.integers(1, events_in_a_run + 1))
        for line in proc.stderr:
            if '"event": "checkpoint"' in line or '"event": "ingested"' in line:
                seen += 1
                if seen >= wanted:
                    break
        time.sleep(float(rng.uniform(0.0, 0.02)))
        how = f"after event {wanted}"
    else:  # at a random time since the start (start-up, lock, listing and publishing included)
        delay = float(rng.uniform(0.2, seconds_in_a_run))
        time.sleep(delay)
        how = f"at {delay:.2f} s"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stderr.close()
    return {
        "how": how,
        "finished_first": proc.returncode == 0,
        "elapsed": time.monotonic() - started,
    }


def test_sigkill_at_random_moments_then_rerun_gives_the_uninterrupted_model(tmp_path):
    data = tmp_path / "data"
    files = [write_part(data, i, rows=ROWS, row_group=ROW_GROUP) for i in range(FILES)]
    true_rows = FILES * ROWS
    rng = np.random.default_rng(SEED)
    tally = {"runs": 0, "kills": 0, "mid_file": 0, "mismatches": 0}
    details = []
    for solver, kills in KILLS.items():
        options = dict(
            model={"solver": solver}, state={"checkpoint_row_groups": 1, "batch_size": BATCH}
        )
        reference_job = write_job(
            tmp_path,
            name=f"ref-{solver}.toml",
            outputs={"model": f"ref-{solver}/model.json"},
            **{**options, "state": {**options["state"], "location": f"ref-{solver}-state/"}},
        )
        started = time.monotonic()
        done = _run_to_completion(reference_job)
        seconds = time.monotonic() - started
        tally["runs"] += 1
        assert done.returncode == 0, done.stderr
        reference = (tmp_path / f"ref-{solver}" / "model.json").read_bytes()
        ref_model = streamreg.load(tmp_path / f"ref-{solver}" / "model.json")
        assert ref_model.rows_read_ == true_rows
        if solver == "exact":  # and the uninterrupted job is one fit over all the files
            fit = streamreg.fit(
                sorted(str(f) for f in files), target="y", solver="exact", batch_size=BATCH
            )
            assert ref_model.state_ == fit.state_
            np.testing.assert_array_equal(ref_model.coef_, fit.coef_)

        events_in_a_run = FILES * (ROWS // ROW_GROUP)  # 3 checkpoints + 1 "ingested" per file
        for k in range(kills):
            state = tmp_path / f"state-{solver}-{k}"
            out = tmp_path / f"out-{solver}-{k}"
            job = write_job(
                tmp_path,
                name=f"kill-{solver}-{k}.toml",
                outputs={"model": f"{out.name}/model.json"},
                **{**options, "state": {**options["state"], "location": f"{state.name}/"}},
            )
            where = _killed_run(job, rng, events_in_a_run, seconds)
            tally["runs"] += 1
            tally["kills"] += 1
            partial = state / "partial"
            mid_file = partial.exists() and any(partial.iterdir())
            tally["mid_file"] += mid_file
            done = _run_to_completion(job)
            tally["runs"] += 1
            assert done.returncode == 0, done.stderr
            model = (out / "model.json").read_bytes()
            manifest = json.loads((state / "manifest.json").read_text())
            same = model == reference and manifest["rows"] == true_rows
            if not same:
                tally["mismatches"] += 1
            assert not (state / "lock").exists()
            assert not any(partial.iterdir())
            assert sorted(p.name for p in (state / "states").iterdir()) == sorted(
                e["state"] for e in manifest["files"]
            )
            details.append(f"{solver} kill {k}: {where['how']}, mid-file={mid_file}, same={same}")
            shutil.rmtree(state)
            shutil.rmtree(out)
    print("\n" + "\n".join(details))
    print(
        f"kill-test tally: runs {tally['runs']}, kills {tally['kills']}, "
        f"mid-file {tally['mid_file']}, mismatches {tally['mismatches']}"
    )
    assert tally["kills"] >= 10
    assert tally["mid_file"] >= 3, tally
    assert tally["mismatches"] == 0, details
