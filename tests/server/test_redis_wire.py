"""The hot-path Redis connection against a real redis-server: replies matched in order,
error replies, timeouts that don't shift later replies, reconnection after a restart."""

import asyncio

import pytest

from server.store.embedded import EmbeddedRedis
from server.store.wire import ReplyError, WireClient, WireError, parse_url


async def test_replies_come_back_to_their_callers_in_order(redis_url):
    wire = WireClient(redis_url)
    assert await wire.call("SET", "k", b"\x00binary\xff") == b"OK"
    replies = await wire.pipeline([("GET", "k"), ("INCRBY", "n", 5), ("HSET", "h", "f", 1.5),
                                   ("HGET", "h", "f")])
    assert replies == [b"\x00binary\xff", 5, 1, b"1.5"]
    # Many callers at once on the one connection: each gets its own reply.
    got = await asyncio.gather(*(wire.call("ECHO", f"m{i}") for i in range(200)))
    assert got == [f"m{i}".encode() for i in range(200)]
    await wire.aclose()


async def test_the_callers_of_one_loop_pass_share_one_write(redis_url):
    wire = WireClient(redis_url)
    await wire.call("PING")  # connected
    transport = wire._proto.transport
    writes = []
    real_write = transport.write

    def counting_write(data):
        writes.append(data)
        real_write(data)

    transport.write = counting_write
    try:
        calls = (wire.pipeline([("ECHO", f"a{i}"), ("ECHO", f"b{i}")]) for i in range(50))
        got = await asyncio.gather(*calls)
        assert got == [[f"a{i}".encode(), f"b{i}".encode()] for i in range(50)]
        assert len(writes) == 1  # 50 callers, 100 commands: one send()
        assert await wire.call("ECHO", "alone") == b"alone"  # a lone caller's write leaves at once
        assert len(writes) == 2
    finally:
        transport.write = real_write
        await wire.aclose()


async def test_an_error_reply_is_returned_in_its_place(redis_url):
    wire = WireClient(redis_url)
    await wire.call("SET", "s", "text")
    ok, err, after = await wire.pipeline([("GET", "s"), ("INCR", "s"), ("ECHO", "still in step")])
    assert ok == b"text" and isinstance(err, ReplyError) and "not an integer" in str(err)
    assert after == b"still in step"
    await wire.aclose()


async def test_a_timed_out_call_does_not_shift_the_next_replies(redis_url):
    wire = WireClient(redis_url)
    with pytest.raises(TimeoutError):
        await wire.call("DEBUG", "SLEEP", "0.2", timeout_s=0.02)
    # The late reply to DEBUG SLEEP is dropped, not handed to the next caller.
    assert await wire.call("ECHO", "mine", timeout_s=2.0) == b"mine"
    await wire.aclose()


async def test_fails_fast_while_down_and_reconnects_after_a_restart(tmp_path):
    server = EmbeddedRedis(tmp_path / "redis").start()
    wire = WireClient(server.url, connect_timeout_s=0.5, retry_after_s=30.0)
    try:
        assert await wire.call("PING") == b"PONG"
        server.kill()
        with pytest.raises(WireError):  # the lost connection, or the failed reconnect
            await wire.call("PING")
        with pytest.raises(WireError):
            await wire.call("PING")
        with pytest.raises(WireError, match="unreachable"):  # within retry_after_s: no new connect
            await wire.call("PING")
        server.start()
        with pytest.raises(WireError):  # ordinary calls still wait out retry_after_s...
            await wire.call("PING")
        assert await wire.call("PING", probe=True) == b"PONG"  # ...a health probe does not
        assert await wire.call("PING") == b"PONG"
    finally:
        await wire.aclose()
        server.stop()


def test_urls():
    tcp = parse_url("redis://app:s%40cret@cache.internal:6380/2")
    assert (tcp["host"], tcp["port"], tcp["db"], tcp["username"], tcp["password"]) == (
        "cache.internal", 6380, 2, "app", "s@cret")
    assert parse_url("rediss://h")["ssl"] is not None and parse_url("redis://h")["ssl"] is None
    unix = parse_url("unix:///run/redis.sock?db=3&password=pw")
    assert (unix["path"], unix["db"], unix["password"]) == ("/run/redis.sock", 3, "pw")
    with pytest.raises(ValueError, match="scheme"):
        parse_url("http://h")
