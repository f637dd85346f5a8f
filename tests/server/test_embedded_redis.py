import redis

from server.store.embedded import EmbeddedRedis


def test_acknowledged_writes_survive_a_killed_redis(tmp_path):
    server = EmbeddedRedis(tmp_path).start()
    try:
        client = redis.Redis.from_url(server.url)
        client.set("k", "v")
        client.xadd("s", {"a": "1"})
        client.close()
        server.kill()

        server.start()
        client = redis.Redis.from_url(server.url)
        assert client.get("k") == b"v"
        assert client.xlen("s") == 1
        client.close()
    finally:
        server.stop()  # never leave a redis-server behind, even when an assertion failed
    assert server.process is None
