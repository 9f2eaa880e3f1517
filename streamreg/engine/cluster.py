"""Talking to a Dask cluster without hanging: a bounded handshake and a deadline for progress.

``distributed.Client(address, timeout=...)`` bounds the TCP connect only: its handshake read
waits forever on a port that accepts and never answers, and a port speaking another
protocol (HTTP, garbage) makes it read a frame length from the wrong bytes (a
``MemoryError`` for 3 EiB). Once connected, a scheduler with no workers — or whose workers
all died — leaves every future pending forever. A cron fit against a dead cluster must end,
with one sentence, in bounded time:

* :func:`probe_scheduler` parses the address and performs distributed's handshake in a
  thread of its own, within ``timeout`` seconds, before any ``Client`` is made;
* :func:`await_future` waits for a future and gives up when neither it nor a task it
  depends on has finished for ``stall_timeout`` seconds (:data:`STALL_TIMEOUT` by default),
  saying how many workers the scheduler has; a task's own error (a
  :class:`~streamreg.errors.StreamregError`) passes
  through, and the cluster's failures (workers killed, work cancelled) become one sentence.

>>> probe_scheduler("not-an-address", timeout=1.0)
Traceback (most recent call last):
...
streamreg.errors.InputError: scheduler='not-an-address' is not a Dask scheduler address \
(missing port number in address 'not-an-address'); expected tcp://HOST:PORT.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Sequence

from ..errors import InputError, StreamregError, parameter

# Seconds a cluster may go without finishing any task before a run gives up (stall_timeout).
# Long enough for one task to read a large Parquet file; short enough for a cron job.
STALL_TIMEOUT = 300.0
# How often the wait wakes up to look at the cluster.
POLL_SECONDS = 2.0


def probe_scheduler(address: str, timeout: float) -> None:
    """Check that ``address`` is a Dask scheduler answering distributed's handshake within
    ``timeout`` seconds; otherwise one sentence (:class:`~streamreg.errors.InputError`)."""
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, location = parse_address(address)
        if scheme in ("tcp", "tls"):
            parse_host_port(location)
    except (ValueError, TypeError) as exc:
        raise InputError(
            f"{parameter('scheduler', address)} is not a Dask scheduler address ({exc}); "
            "expected tcp://HOST:PORT."
        ) from None
    if scheme == "tcp":
        # Nothing listening (refused, unroutable) is told apart from a port that accepts and
        # then says nothing: distributed's own connect retries a refusal until its timeout.
        host, port = parse_host_port(location)
        try:
            socket.create_connection((host, port), timeout=timeout).close()
        except OSError as exc:
            raise InputError(
                f"could not reach the Dask scheduler at {address} within {timeout:g} s "
                f"({_one_line(exc)})."
            ) from None
    outcome: dict = {}

    def handshake() -> None:
        from distributed.comm import connect

        async def attempt():
            comm = await connect(address, timeout=timeout)
            await comm.close()

        try:
            asyncio.run(asyncio.wait_for(attempt(), timeout))
        except BaseException as exc:  # noqa: BLE001 - reported below, in words
            outcome["error"] = exc

    thread = threading.Thread(target=handshake, name="streamreg-scheduler-probe", daemon=True)
    thread.start()
    thread.join(timeout + 5.0)
    error = outcome.get("error")
    if thread.is_alive() or isinstance(error, (TimeoutError, asyncio.TimeoutError)):
        raise InputError(
            f"the Dask scheduler at {address} did not answer within {timeout:g} s: is it a Dask "
            f"scheduler, and up ({parameter('timeout')} sets the wait)."
        )
    if isinstance(error, OSError):
        raise InputError(
            f"could not reach the Dask scheduler at {address} within {timeout:g} s "
            f"({_one_line(error)})."
        )
    if error is not None:
        raise InputError(
            f"{address} answered, but not as a Dask scheduler does (its bytes are not Dask's "
            f"protocol: {type(error).__name__}); give the scheduler's address (tcp://HOST:8786)."
        )


def await_future(
    client,
    future,
    stall_timeout: float | None,
    what: str = "the fit",
    progress: Sequence = (),
    on_progress: Callable[[], None] | None = None,
):
    """``future.result()``, but give up when neither it nor any of ``progress`` (the tasks it
    depends on) finishes for ``stall_timeout`` seconds.

    A task's own error (a streamreg error) is raised as it is; the cluster's failures are one
    sentence (:class:`~streamreg.errors.InputError`)."""
    limit = STALL_TIMEOUT if stall_timeout is None else float(stall_timeout)
    if not limit > 0:
        raise InputError(
            f"{parameter('stall_timeout')} must be a positive number of seconds; got {limit}."
        )
    finished = 0
    last_progress = time.monotonic()
    while True:
        left = limit - (time.monotonic() - last_progress)
        if left <= 0:
            pending = sum(not f.done() for f in {f.key: f for f in (*progress, future)}.values())
            raise InputError(_stalled_message(client, what, limit, pending))
        try:
            return future.result(timeout=min(POLL_SECONDS, left))
        except StreamregError:
            raise
        except TimeoutError:
            pass
        except Exception as exc:  # noqa: BLE001 - the cluster's failures, in words
            raise InputError(_failure_message(exc, what)) from exc
        now = sum(f.done() for f in progress)
        if now > finished:
            finished, last_progress = now, time.monotonic()
            if on_progress is not None:
                on_progress()
        if getattr(client, "status", "running") in ("closed", "closing"):
            raise InputError(f"{what} lost its connection to the Dask scheduler.")


def _failure_message(exc: BaseException, what: str) -> str:
    name = type(exc).__name__
    if name == "KilledWorker":
        return (
            f"the Dask workers running {what} died while reading ({_one_line(exc)}); they may "
            "have run out of memory: try a smaller batch size or more memory per worker."
        )
    if "Cancelled" in name:
        return (
            f"the Dask cluster cancelled {what} (the scheduler lost its workers or the client "
            "its connection); run it again when the cluster is healthy."
        )
    return f"{what} failed on the Dask cluster: {name}: {_one_line(exc)}."


def _stalled_message(client, what: str, limit: float, pending: int) -> str:
    try:
        workers = len(client.scheduler_info().get("workers", {}))
    except Exception:  # noqa: BLE001 - only for the message
        workers = None
    where = getattr(getattr(client, "scheduler", None), "address", None) or "the scheduler"
    if workers == 0:
        state = f"the Dask scheduler at {where} has no workers"
    elif workers is None:
        state = f"the Dask scheduler at {where} does not say how many workers it has"
    else:
        state = f"the Dask scheduler at {where} has {workers} worker(s) but none finished a task"
    return (
        f"{what} made no progress for {limit:g} s: {state}; {pending} task(s) are still waiting "
        f"({parameter('stall_timeout')} sets how long to wait)."
    )


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) < 300 else text[:297] + "..."
