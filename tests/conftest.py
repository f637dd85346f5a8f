"""Shared fixtures. Integration tests run against a real redis-server (the embedded one)."""

import os

# One BLAS thread: implicit warns (an error under filterwarnings=error) when OpenBLAS may
# spawn threads, and extra threads only fight each other on a 2-core CI machine.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402

from server.embedded_redis import EmbeddedRedis  # noqa: E402


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """One real redis-server for the session; tests get a flushed database via `redis_url`."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server):
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url
