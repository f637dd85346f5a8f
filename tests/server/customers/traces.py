"""Every key and every value in a Redis (any flavour), searched for a shopper's ids: what the
consent and erasure acceptance tests scan."""

from __future__ import annotations

import redis
from redis.cluster import RedisCluster


def _client(url: str, cluster: bool):
    return RedisCluster.from_url(url) if cluster else redis.Redis.from_url(url)


def dump(url: str, cluster: bool) -> dict[bytes, list[bytes]]:
    """key -> every byte string it holds (members, fields, values, stream entries)."""
    client = _client(url, cluster)
    try:
        keys = client.keys("*", target_nodes=RedisCluster.PRIMARIES) if cluster else client.keys("*")
        out: dict[bytes, list[bytes]] = {}
        for key in keys:
            kind = client.type(key).decode()
            if kind == "string":
                parts = [client.get(key)]
            elif kind == "hash":
                parts = [x for kv in client.hgetall(key).items() for x in kv]
            elif kind == "list":
                parts = client.lrange(key, 0, -1)
            elif kind == "set":
                parts = list(client.smembers(key))
            elif kind == "zset":
                parts = [m for m, _ in client.zrange(key, 0, -1, withscores=True)]
            elif kind == "stream":
                parts = [x for _, fields in client.xrange(key) for kv in fields.items() for x in kv]
            else:
                parts = []
            out[key] = [p for p in parts if p is not None]
        return out
    finally:
        client.close()


def traces(url: str, cluster: bool, ids: list[str]) -> list[str]:
    """Where any of `ids` appears: in a key's name or anywhere in its content."""
    needles = [i.encode() for i in ids]
    found = []
    for key, parts in dump(url, cluster).items():
        for needle in needles:
            if needle in key:
                found.append(f"key {key!r}")
            found += [f"in {key!r}: {p[:80]!r}" for p in parts if needle in p]
    return found
