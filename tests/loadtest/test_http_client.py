"""The benchmark's HTTP client against a real aiohttp server: statuses, bodies of any size,
keep-alive reuse, POST bodies, and a stalled server turned into a timeout, not a hang."""

import asyncio

import orjson
import pytest
from aiohttp import web

from loadtest.http_client import Client, build_request


@pytest.fixture
async def base(aiohttp_server):
    seen = {"posts": [], "peers": set()}

    async def echo(request: web.Request) -> web.Response:
        seen["peers"].add(request.transport.get_extra_info("peername"))
        if request.method == "POST":
            seen["posts"].append(await request.json())
        size = int(request.query.get("size", "2"))
        status = int(request.query.get("status", "200"))
        return web.Response(body=b"x" * size, status=status)

    async def stall(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(text="late")

    app = web.Application()
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/stall", stall)
    server = await aiohttp_server(app)
    return f"http://{server.host}:{server.port}", seen


async def test_statuses_bodies_and_connection_reuse(base):
    url, seen = base
    async with Client(url, limit=2) as client:
        statuses = [await client.send(client.request_bytes("GET", f"/echo?size={n}&status={s}"))
                    for n, s in [(0, 200), (1, 404), (200_000, 200), (5, 422)]]
        assert statuses == [200, 404, 200, 422]
    assert len(seen["peers"]) == 1  # sequential requests reuse one keep-alive connection


async def test_post_body_arrives_intact(base):
    url, seen = base
    event = {"event_id": "e1", "type": "view", "item_id": "é-1", "ts": 1}
    async with Client(url) as client:
        assert await client.send(client.request_bytes("POST", "/echo", event)) == 200
    assert seen["posts"] == [event]


async def test_concurrent_requests_use_at_most_limit_connections(base):
    url, seen = base
    async with Client(url, limit=3) as client:
        raw = client.request_bytes("GET", "/echo")
        assert await asyncio.gather(*(client.send(raw) for _ in range(30))) == [200] * 30
    assert 1 <= len(seen["peers"]) <= 3


async def test_stalled_server_times_out(base):
    url, _ = base
    async with Client(url, timeout_s=0.2) as client:
        with pytest.raises(TimeoutError):
            await client.send(client.request_bytes("GET", "/stall"))
        assert await client.send(client.request_bytes("GET", "/echo")) == 200  # pool still works


def test_request_bytes_are_http11_with_length():
    raw = build_request("POST", "/v1/events", {"a": 1}, "h:1")
    head, body = raw.split(b"\r\n\r\n")
    assert head.startswith(b"POST /v1/events HTTP/1.1\r\nHost: h:1\r\n")
    assert b"Content-Length: %d" % len(body) in head and orjson.loads(body) == {"a": 1}
