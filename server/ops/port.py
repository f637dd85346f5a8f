"""One server per port. The workers of one server share their port with SO_REUSEPORT (the kernel
spreads connections evenly over their sockets), but SO_REUSEPORT would just as silently let a
second `vitrine serve` join and split the traffic between two models. So a server first claims
the port: a lock only one process can hold, then a probe that the port is free of anyone else.
"""

from __future__ import annotations

import socket
import sys


class PortInUse(RuntimeError):
    """The port is taken: the message says by whom, as far as can be known."""


def claim_port(host: str, port: int) -> socket.socket | None:
    """Claim `port` for this server; keep the returned lock open for the server's lifetime (the
    kernel releases it when the process dies, even on `kill -9`). Raises PortInUse.

    The lock is an abstract Unix socket named after the port (Linux; bind is atomic, so two
    servers starting at once can't both win); the probe binds the address without SO_REUSEPORT,
    which fails while anything listens there, a Vitrine server or another program."""
    lock = None
    if sys.platform.startswith("linux"):
        lock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            lock.bind(f"\0vitrine-serve-port-{port}")
        except OSError:
            lock.close()
            raise PortInUse(f"port {port} is already served by another `vitrine serve` on this machine; "
                            "stop it or choose another --port") from None
    try:
        _probe(host, port)
    except BaseException:
        if lock is not None:
            lock.close()
        raise
    return lock


def _probe(host: str, port: int) -> None:
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise PortInUse(f"cannot listen on {host}:{port}: {exc}") from None
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            # As aiohttp binds: SO_REUSEADDR, so connections in TIME_WAIT don't count as "in use".
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                raise PortInUse(f"cannot listen on {host}:{port}: {exc.strerror} "
                                "(another program listens there); choose another --port") from None


def listening_sockets(host: str, port: int, backlog: int = 128) -> list[socket.socket]:
    """Sockets listening on every address of `host:port`, joined to the port's SO_REUSEPORT
    group, non-blocking (for an event loop). The supervisor opens one set per worker slot and
    keeps it across the slot's workers: connections the kernel queued on a slot's socket wait
    there for its next worker instead of being reset when the worker it replaces closes its copy."""
    out: list[socket.socket] = []
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            out.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except BaseException:
        for sock in out:
            sock.close()
        raise
    return out
