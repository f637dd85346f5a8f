import redis

from server.embedded_redis import EmbeddedRedis


def test_acknowledged_writes_survive_a_killed_redis(tmp_path):
    server = EmbeddedRedis(tmp_path).start()
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
    server.stop()
    assert server.process is None
