"""Logs: one JSON object per line on stderr (python-json-logger's formatter over the standard
`logging` module, so every `logging.getLogger(...)` of the codebase and of its libraries comes
out the same way), each with the request id of the request it happened in; repeated warnings and
errors rate-limited; the access log sampled.

    log = logging.getLogger("vitrine.<feature>")      # as everywhere: nothing else to import
    log.warning("trending not refreshed: %s", exc)     # at most once per server.log_repeat_s
    log.info("model loaded", extra={"version": v})     # `extra` fields become JSON fields
"""

from __future__ import annotations

import contextvars
import logging
import sys
import time

from pythonjsonlogger.orjson import OrjsonFormatter

from server.settings import ServerSettings

ACCESS = logging.getLogger("vitrine.access")
# Set by the request middleware; every record logged while a request runs carries it.
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
TEXT_FORMAT = "%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            request_id = request_id_var.get()
            if request_id is not None:
                record.request_id = request_id
        return True


class RepeatFilter(logging.Filter):
    """A warning or error with the same text as one logged less than `window_s` ago is dropped
    and counted; the next one after the window carries `repeated`: how many were dropped. (A
    model that fails to load is retried every 2 s: one line a minute says it, not thirty.)"""

    MAX_KEYS = 1024

    def __init__(self, window_s: float, clock=time.monotonic):
        super().__init__()
        self.window_s, self.clock = window_s, clock
        self.seen: dict[tuple, list] = {}  # (logger, level, message) -> [last logged at, dropped since]

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or self.window_s <= 0:
            return True
        key = (record.name, record.levelno, record.getMessage())
        now = self.clock()
        entry = self.seen.get(key)
        if entry is not None and now - entry[0] < self.window_s:
            entry[1] += 1
            return False
        if entry is not None and entry[1]:
            record.repeated = entry[1]
        self.seen[key] = [now, 0]
        if len(self.seen) > self.MAX_KEYS:
            self.seen = {k: v for k, v in self.seen.items() if now - v[0] < self.window_s}
        return True


class TextFormatter(logging.Formatter):
    """For a terminal: the classic line, and the request id at the end when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None)
        return f"{line} [{request_id}]" if request_id else line


def formatter(fmt: str) -> logging.Formatter:
    if fmt == "text":
        return TextFormatter(TEXT_FORMAT)
    return OrjsonFormatter(["levelname", "name", "message", "process"], timestamp="time",
                           rename_fields={"levelname": "level", "name": "logger", "process": "pid"})


def configure_logging(cfg: ServerSettings, stream=None) -> logging.Handler:
    """Route every logger of this process to one stderr handler in `cfg.log_format`."""
    stream = stream or sys.stderr
    fmt = cfg.log_format
    if fmt == "auto":
        fmt = "text" if stream.isatty() else "json"
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter(fmt))
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RepeatFilter(cfg.log_repeat_s))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(cfg.log_level.upper())
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # which CPU build it tried, at INFO
    return handler
