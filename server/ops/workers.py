"""Running the server: one process, or N worker processes on one port (SO_REUSEPORT).

With several workers the parent starts the embedded Redis once (when no REDIS_URL is set)
and hands its URL to the workers; the model files are memory-mapped, so the workers share
their pages. SIGTERM/SIGINT stop the workers, then Redis.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import sys

from server.settings import Settings


def _run(settings: Settings) -> None:
    from aiohttp import web

    from server.app import create_app

    logging.basicConfig(level=settings.server.log_level.upper(),
                        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    if sys.platform != "win32":
        import uvloop

        uvloop.install()
    web.run_app(create_app(settings), host=settings.server.host, port=settings.server.port, reuse_port=True,
                access_log=None, print=None, handle_signals=True)


def serve(settings: Settings) -> int:
    host, port = settings.server.host, settings.server.port
    if settings.server.workers == 1:
        redis = settings.redis.url or f"embedded in {settings.data.dir}"
        print(f"vitrine: serving on http://{host}:{port} "
              f"(model store {settings.model.store}, Redis {redis})", flush=True)
        _run(settings)
        return 0
    from server.store.embedded import EmbeddedRedis

    embedded = None
    if not settings.redis.url:
        embedded = EmbeddedRedis(settings.data.dir / "redis").start()
        settings = settings.replace(**{"redis.url": embedded.url})
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_run, args=(settings,), name=f"vitrine-worker-{i}")
               for i in range(settings.server.workers)]
    for w in workers:
        w.start()
    print(f"vitrine: {len(workers)} workers on http://{host}:{port}", flush=True)

    def stop(signum, frame):  # noqa: ARG001
        for w in workers:
            if w.is_alive():
                w.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        for w in workers:
            w.join()
    finally:
        stop(None, None)
        for w in workers:
            w.join(10)
        if embedded is not None:
            embedded.stop()
    return 0
