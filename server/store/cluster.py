"""The hot-path client for a Redis Cluster: the slot map, one WireClient per master, and each
pipeline split by node.

A pipeline's commands are grouped by the master that owns their key's slot and sent to every
node at once; the caller waits for the slowest node (one round trip, in parallel). A `MOVED`
reply (a slot migrated, a failover) refreshes the slot map and re-sends that command to its new
owner; `ASK` (a slot being migrated) sends it once to the named node after `ASKING`. Vitrine's
commands are safe to re-send: reads, and scripts that apply each event once by its id.
"""

from __future__ import annotations

import asyncio
import random
from urllib.parse import quote

from redis.crc import key_slot

from server.store.wire import ReplyError, WireClient, WireError, parse_url, redact

SLOTS = 16_384
_MAX_REDIRECTS = 3


def command_key(command: tuple) -> str | bytes | None:
    """The key a command routes by: the first key of a script, else its first argument."""
    name = command[0].upper() if isinstance(command[0], str) else command[0].decode().upper()
    if name in ("EVALSHA", "EVAL"):
        return command[3] if int(command[2]) > 0 else None
    if name in ("PING", "SCRIPT", "INFO", "CLUSTER", "CONFIG", "ASKING"):
        return None
    return command[1] if len(command) > 1 else None


def _slot(key: str | bytes) -> int:
    return key_slot(key.encode() if isinstance(key, str) else key)


class ClusterWire:
    """Same interface as WireClient (`pipeline`, `call`, `aclose`) over every master."""

    def __init__(self, url: str, *, connect_timeout_s: float = 1.0, stall_s: float = 2.0,
                 retry_after_s: float = 0.2):
        self.url = url
        self._target = parse_url(url)
        self._options = {"connect_timeout_s": connect_timeout_s, "stall_s": stall_s,
                         "retry_after_s": retry_after_s}
        self._seed = (self._target["host"], self._target["port"])
        self._nodes: dict[tuple[str, int], WireClient] = {}
        self._owner: list[tuple[str, int] | None] = [None] * SLOTS
        self._refreshing: asyncio.Task | None = None
        self._stale = True
        self._masters: list[tuple[str, int]] = []

    def _node(self, address: tuple[str, int]) -> WireClient:
        client = self._nodes.get(address)
        if client is None:
            t = self._target
            auth = ""
            if t["password"] is not None:
                auth = f"{quote(t['username'] or '', safe='')}:{quote(t['password'], safe='')}@"
            scheme = "rediss" if t["ssl"] else "redis"
            client = self._nodes[address] = WireClient(f"{scheme}://{auth}{address[0]}:{address[1]}",
                                                       **self._options)
        return client

    async def call(self, *args, timeout_s: float | None = None, probe: bool = False) -> object:
        return (await self.pipeline([args], timeout_s=timeout_s, probe=probe))[0]

    async def pipeline(self, commands: list[tuple], *, timeout_s: float | None = None,
                       probe: bool = False) -> list:
        if self._stale:
            await self._refresh(timeout_s)
        results: list = [None] * len(commands)
        todo: list[tuple[int, tuple, tuple[str, int] | None]] = [
            (i, c, self._route(c)) for i, c in enumerate(commands)]
        for _ in range(_MAX_REDIRECTS + 1):
            redirected = await self._send(todo, results, timeout_s, probe)
            if not redirected:
                return results
            todo = redirected
        for i, command, _ in todo:  # still moving after several redirects: report, don't loop
            results[i] = ReplyError(f"slot of {command_key(command)!r} kept moving; retry")
        return results

    def _route(self, command: tuple) -> tuple[str, int] | None:
        key = command_key(command)
        if key is None:
            return None  # keyless (PING): any node
        return self._owner[_slot(key)]

    async def _send(self, todo, results: list, timeout_s: float | None, probe: bool) -> list:
        groups: dict[tuple[str, int], list[tuple[int, tuple]]] = {}
        for i, command, node in todo:
            node = node or self._any_node()
            groups.setdefault(node, []).append((i, command))
        replies = await asyncio.gather(
            *[self._node(node).pipeline([c for _, c in group], timeout_s=timeout_s, probe=probe)
              for node, group in groups.items()],
            return_exceptions=True)
        redirected, asks = [], []
        failure: BaseException | None = None
        for group, reply in zip(groups.values(), replies, strict=True):
            if isinstance(reply, BaseException):
                failure = failure or reply
                self._stale = True  # a node gone may mean a failover: re-read the map next time
                continue
            for (i, command), result in zip(group, reply, strict=True):
                text = str(result) if isinstance(result, ReplyError) else ""
                if text.startswith("MOVED "):
                    slot, address = _redirect(text)
                    self._owner[slot] = address
                    self._stale = True
                    redirected.append((i, command, address))
                elif text.startswith("ASK "):  # this one command, once, to the importing node
                    asks.append((i, command, _redirect(text)[1]))
                else:
                    results[i] = result
        if failure is not None:
            raise failure
        if asks:
            answers = await asyncio.gather(*[
                self._node(address).pipeline([("ASKING",), command], timeout_s=timeout_s)
                for _, command, address in asks])
            for (i, _, _), (_, result) in zip(asks, answers, strict=True):
                results[i] = result
        return redirected

    def _any_node(self) -> tuple[str, int]:
        return random.choice(self._masters) if self._masters else self._seed

    async def _refresh(self, timeout_s: float | None) -> None:
        """Re-read the slot map (one caller does it, the others wait for it)."""
        if self._refreshing is None:
            self._refreshing = asyncio.ensure_future(self._read_slots(timeout_s))
        task = self._refreshing
        try:
            await asyncio.shield(task)
        finally:
            if task.done() and self._refreshing is task:
                self._refreshing = None

    async def _read_slots(self, timeout_s: float | None) -> None:
        candidates = [self._seed, *[a for a in self._nodes if a != self._seed]]
        last: Exception | None = None
        for address in candidates:
            try:
                reply = await self._node(address).call("CLUSTER", "SLOTS", timeout_s=timeout_s)
            except (WireError, TimeoutError) as exc:
                last = exc
                continue
            if isinstance(reply, ReplyError):
                raise WireError(f"{redact(self.url)} is not a Redis Cluster node ({reply}); "
                                "unset redis.cluster (VITRINE_REDIS_CLUSTER)")
            owner: list[tuple[str, int] | None] = [None] * SLOTS
            for start, end, master, *_replicas in reply:
                host = master[0].decode() or address[0]
                owner[start:end + 1] = [(host, int(master[1]))] * (end - start + 1)
            self._owner, self._stale = owner, False
            self._masters = sorted({a for a in owner if a is not None})
            return
        raise WireError(f"no node of the cluster at {redact(self.url)} answers: {last}")

    async def aclose(self) -> None:
        if self._refreshing is not None:
            self._refreshing.cancel()
        for client in self._nodes.values():
            await client.aclose()
        self._nodes.clear()


def _redirect(text: str) -> tuple[int, tuple[str, int]]:
    """`MOVED 3999 127.0.0.1:6381` → (3999, ("127.0.0.1", 6381))."""
    _, slot, address = text.split()
    host, _, port = address.rpartition(":")
    return int(slot), (host, int(port))
