"""Shared fixtures. Integration tests run against real redis-servers: the embedded one, a TCP
server with a password, and a 3-master Redis Cluster (tests/redis_servers.py)."""

import os

# One BLAS thread: implicit warns (an error under filterwarnings=error) when OpenBLAS may
# spawn threads, and extra threads only fight each other on a 2-core CI machine.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from dataclasses import dataclass  # noqa: E402

import pytest  # noqa: E402

from server.store.embedded import EmbeddedRedis  # noqa: E402
from tests.redis_servers import LocalCluster, TcpRedis  # noqa: E402


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


@pytest.fixture(scope="session")
def tcp_redis(tmp_path_factory):
    server = TcpRedis(tmp_path_factory.mktemp("redis-tcp")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory):
    cluster = LocalCluster(tmp_path_factory.mktemp("redis-cluster")).start()
    yield cluster
    cluster.stop()


@dataclass(frozen=True)
class RedisTarget:
    flavour: str
    url: str
    cluster: bool


FLAVOURS = ("embedded", "tcp_password", "cluster")


@pytest.fixture(params=FLAVOURS)
def redis_target(request) -> RedisTarget:
    """Each Redis flavour in turn, flushed: the store contract suite runs against all three."""
    if request.param == "embedded":
        return RedisTarget("embedded", request.getfixturevalue("redis_url"), False)
    server = request.getfixturevalue("tcp_redis" if request.param == "tcp_password" else "redis_cluster")
    server.flush()
    return RedisTarget(request.param, server.url, request.param == "cluster")
