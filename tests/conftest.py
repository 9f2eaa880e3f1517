from __future__ import annotations

import contextlib
import logging
import os
import socket

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest


def write_parquet(path, columns: dict, row_group_size: int | None = None):
    """Write a dict of columns to ``path`` (parent folders created) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path, row_group_size=row_group_size)
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (for a server, or for a refused call)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


TEST_AWS_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextlib.contextmanager
def moto_s3_server(credentials: dict = TEST_AWS_CREDENTIALS):
    """moto's S3 server on loopback, its endpoint URL yielded, with ``credentials`` in the
    environment meanwhile (the variables restored after). Skips without s3fs or moto."""
    pytest.importorskip("s3fs")
    server_class = pytest.importorskip("moto.server").ThreadedMotoServer
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    saved = {k: os.environ.get(k) for k in credentials}
    os.environ.update(credentials)
    server = server_class(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def write_xy(path, x: np.ndarray, y: np.ndarray, weights=None, names=None, row_group_size=None):
    names = names or [f"x{j + 1}" for j in range(x.shape[1])]
    cols = {n: x[:, j] for j, n in enumerate(names)}
    cols["y"] = y
    if weights is not None:
        cols["w"] = weights
    return write_parquet(path, cols, row_group_size)


@pytest.fixture(scope="module")
def client():
    """A local Dask cluster of two one-thread worker processes, one per test module."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1"
    ) as cluster:
        with distributed.Client(cluster, set_as_default=False) as c:
            yield c


@pytest.fixture
def rng():
    return np.random.default_rng(20261127)
