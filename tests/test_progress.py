"""Progress: drawn by rich on a terminal, in place (no stale characters), 100 % exactly once;
nothing in a pipe or under --quiet; for local and Dask fits, predict, generate and job runs;
and Dask's own warnings and log lines never reach the command line's output.

What a terminal shows is reconstructed by a small emulator of the few control sequences a
progress display uses (carriage return, erase line, cursor up), so "no stale characters"
is checked on the screen, not on the bytes.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pty
import re
import socket
import subprocess

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import streamreg
from streamreg.cli import main
from streamreg.jobs import load_job, run_job
from streamreg.progress import Progress

CSI = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])")


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self):
        return True


def screen(text: str) -> list[str]:
    """The lines a terminal shows after ``text`` (``\\r``, ``\\n``, ESC[K, ESC[nA; other
    escape sequences, colours included, change nothing on the screen)."""
    lines: list[list[str]] = [[]]
    row = col = 0
    i = 0
    while i < len(text):
        match = CSI.match(text, i)
        if match:
            params, command = match.groups()
            if command == "K":
                lines[row] = [] if params == "2" else lines[row][:col]
            elif command == "A":
                row = max(row - int(params or 1), 0)
            i = match.end()
            continue
        char = text[i]
        if char == "\r":
            col = 0
        elif char == "\n":
            row, col = row + 1, 0
            while len(lines) <= row:
                lines.append([])
        else:
            line = lines[row]
            line.extend(" " * (col - len(line) + 1))
            line[col] = char
            col += 1
        i += 1
    return ["".join(line).rstrip() for line in lines if "".join(line).strip()]


def run_on_terminal(*args, env_extra=None, timeout=240):
    """The console script with its stderr on a pseudo-terminal; returns (code, stdout, screen
    text of stderr, raw stderr)."""
    primary, secondary = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100", **(env_extra or {})}
    proc = subprocess.Popen(
        ["streamreg", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=secondary,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    os.close(secondary)
    chunks = []
    while True:
        try:
            data = os.read(primary, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    stdout = proc.stdout.read().decode()
    proc.wait(timeout=timeout)
    os.close(primary)
    raw = b"".join(chunks).decode()
    return proc.returncode, stdout, screen(raw), raw


def write_parts(folder, rng, parts=3, rows=4000, p=3):
    folder.mkdir(parents=True, exist_ok=True)
    xs, ys = [], []
    for k in range(parts):
        x = rng.normal(size=(rows, p))
        y = 1.0 + x @ np.arange(1.0, p + 1) + rng.normal(size=rows)
        columns = {f"x{j + 1}": x[:, j] for j in range(p)} | {"y": y}
        pq.write_table(pa.table(columns), folder / f"part-{k}.parquet", row_group_size=500)
        xs.append(x)
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def lstsq(x, y):
    return np.linalg.lstsq(np.column_stack([np.ones(len(y)), x]), y, rcond=None)[0]


# ---------------------------------------------------------------------- the display
def test_terminal_display_is_redrawn_in_place_and_ends_at_100_percent_once():
    tty = Terminal()
    bar = Progress(10_000, 80_000, label="fit", stream=tty, min_interval=0.0)
    for _ in range(10):
        bar.advance(1_000)
    bar.close()
    raw = tty.getvalue()
    assert raw.count("100%") == 1
    assert raw.count("\r") >= 9  # redrawn at every step but the last, then once more
    shown = screen(raw)
    assert len(shown) == 1, shown
    # The last frame replaced the longer ones before it completely (no stale characters):
    assert re.fullmatch(r"fit: \S+ 100% 10\.0k/10\.0k rows  \S+ rows/s  in \d:\d\d", shown[0])


def test_unknown_total_and_units():
    tty = Terminal()
    bar = Progress(None, label="ingest", stream=tty, min_interval=0.0, unit="blocks")
    bar.advance(3)
    bar.set_total(5)
    bar.advance(2)
    bar.close()
    shown = screen(tty.getvalue())
    assert len(shown) == 1 and "100% 5/5 blocks" in shown[0]


def test_no_display_in_a_pipe_or_when_disabled():
    pipe = io.StringIO()
    for enabled, stream in ((None, pipe), (False, Terminal())):
        bar = Progress(100, label="fit", stream=stream, enabled=enabled)
        bar.advance(100)
        bar.close()
        assert stream.getvalue() == ""
        assert bar.rows == 100


def test_an_interrupted_pass_leaves_its_line_where_it_stopped():
    tty = Terminal()
    with contextlib.suppress(RuntimeError), Progress(100, stream=tty, min_interval=0.0) as bar:
        bar.advance(40)
        raise RuntimeError("a bad batch")
    shown = screen(tty.getvalue())
    assert len(shown) == 1 and " 40% " in shown[0] and "100%" not in tty.getvalue()


# ---------------------------------------------------------------------- where it is shown
def test_fit_predict_and_generate_on_a_terminal(tmp_path, rng):
    code, _, shown, raw = run_on_terminal(
        "generate", tmp_path / "gen", "-n", "3000", "--files", "2"
    )
    assert code == 0, raw
    assert raw.count("100%") == 1 and any(
        re.match(r"generate: .*100% 3\.0k/3\.0k rows", s) for s in shown
    )
    x, y = write_parts(tmp_path / "data", rng)
    model = tmp_path / "m.json"
    code, out, shown, raw = run_on_terminal("fit", tmp_path / "data", "-y", "y", "-o", model)
    assert code == 0, raw
    assert raw.count("100%") == 1, raw
    assert [s for s in shown if s.startswith("fit:")] == [s for s in shown if "100%" in s]
    assert "12.0k/12.0k rows" in raw
    coefficients = streamreg.load(model)
    np.testing.assert_allclose(
        [coefficients.intercept_, *coefficients.coef_], lstsq(x, y), rtol=1e-10
    )
    code, _, shown, raw = run_on_terminal(
        "predict", model, tmp_path / "data", "-o", tmp_path / "p.parquet"
    )
    assert code == 0 and raw.count("100%") == 1 and any(s.startswith("predict:") for s in shown)
    code, _, shown, raw = run_on_terminal("fit", tmp_path / "data", "-y", "y", "--quiet")
    assert code == 0 and raw == ""


def test_pipes_get_no_progress(tmp_path, rng):
    write_parts(tmp_path / "data", rng, parts=1)
    proc = subprocess.run(
        ["streamreg", "fit", str(tmp_path / "data"), "-y", "y"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0 and proc.stderr == ""


def test_dask_fit_shows_rows_done_as_files_finish(tmp_path, rng, monkeypatch):
    from distributed import Client, LocalCluster

    x, y = write_parts(tmp_path / "data", rng)
    tty = Terminal()
    monkeypatch.setattr("sys.stderr", tty)
    with (
        LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):
        model = streamreg.fit(tmp_path / "data", target="y", client=client, progress=None)
    np.testing.assert_allclose([model.intercept_, *model.coef_], lstsq(x, y), rtol=1e-10)
    raw = tty.getvalue()
    assert raw.count("100%") == 1
    assert [s for s in screen(raw) if "fit:" in s][-1].startswith("fit: ")
    assert "12.0k/12.0k rows" in raw


def test_job_run_shows_the_rows_ingested(tmp_path, rng, monkeypatch):
    write_parts(tmp_path / "data", rng, parts=2, rows=3000)
    job_file = tmp_path / "job.toml"
    job_file.write_text(
        'inputs = ["data/"]\n\n[model]\ntarget = "y"\n\n[state]\nlocation = "state/"\n\n'
        '[outputs]\nmodel = "out/model.json"\n'
    )
    tty = Terminal()
    monkeypatch.setattr("sys.stderr", tty)
    monkeypatch.chdir(tmp_path)
    result = run_job(load_job(job_file), progress=None)
    assert result.rows == 6000
    raw = tty.getvalue()
    assert raw.count("100%") == 1 and "6.0k/6.0k rows" in raw
    assert any(s.startswith("ingest: ") for s in screen(raw))
    quiet = Terminal()
    monkeypatch.setattr("sys.stderr", quiet)
    x = rng.normal(size=(500, 3))
    pq.write_table(
        pa.table({"x1": x[:, 0], "x2": x[:, 1], "x3": x[:, 2], "y": x.sum(axis=1)}),
        tmp_path / "data" / "part-new.parquet",
    )
    assert run_job(load_job(job_file), progress=False).rows == 500
    assert quiet.getvalue() == ""


# ---------------------------------------------------------------------- Dask's chatter
def test_dask_warnings_never_reach_the_output(tmp_path, rng):
    """With the dashboard's default port taken, a --workers fit prints its report and nothing
    else (distributed would warn "Port 8787 is already in use")."""
    x, y = write_parts(tmp_path / "data", rng, parts=2)
    blocker = socket.socket()
    try:
        blocker.bind(("", 8787))
        blocker.listen()
    except OSError:
        pass  # something else holds the port already: the same situation
    try:
        proc = subprocess.run(
            ["streamreg", "fit", str(tmp_path / "data"), "-y", "y", "--workers", "1", "--json"],
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        blocker.close()
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    report = json.loads(proc.stdout)
    np.testing.assert_allclose([report["intercept"], *report["coef"]], lstsq(x, y), rtol=1e-10)


def test_generate_in_process_uses_the_terminal_only_when_there_is_one(tmp_path, monkeypatch):
    tty = Terminal()
    monkeypatch.setattr("sys.stderr", tty)
    assert main(["generate", str(tmp_path / "g"), "-n", "2000", "--row-group-size", "500"]) == 0
    assert tty.getvalue().count("100%") == 1
    pipe = io.StringIO()
    monkeypatch.setattr("sys.stderr", pipe)
    assert main(["generate", str(tmp_path / "h"), "-n", "2000"]) == 0
    assert pipe.getvalue() == ""
    assert pq.read_table(tmp_path / "h" / "part-00000.parquet").num_rows == 2000
