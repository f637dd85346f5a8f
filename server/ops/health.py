"""What an operator must hear about without reading every log line: warnings kept for
`/readyz`, counted in metrics, and logged once per distinct message rather than per request
or per interval."""

from __future__ import annotations

import logging
import time


class LogOnce:
    """Logs each distinct message once, and again only after `every_s` (a condition that
    persists is repeated now and then, not on every request)."""

    def __init__(self, logger: logging.Logger, every_s: float = 300.0, remember: int = 256):
        self.logger, self.every_s, self.remember = logger, every_s, remember
        self._last: dict[str, float] = {}

    def __call__(self, level: int, message: str) -> bool:
        now = time.monotonic()
        last = self._last.get(message)
        if last is not None and now - last < self.every_s:
            return False
        if len(self._last) >= self.remember:
            self._last.clear()
        self._last[message] = now
        self.logger.log(level, "%s", message)
        return True

    def forget(self) -> None:
        """The condition is over: the next occurrence is news again."""
        self._last.clear()
