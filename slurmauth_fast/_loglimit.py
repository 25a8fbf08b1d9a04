"""A log rate limiter: at most one line per class per interval, with a count of
the lines suppressed in between (used by the front end and the SACK kiosk)."""
from __future__ import annotations

import collections
import logging
import time
from typing import Any, Callable, Dict


class LogLimiter:
    """At most one log line per class per ``interval`` seconds; the lines in between are
    counted and reported with the next one."""

    def __init__(self, logger: logging.Logger, interval: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.interval = interval
        self._clock = clock
        self._last: Dict[str, float] = {}
        self._suppressed: Dict[str, int] = collections.Counter()

    def log(self, level: int, cls: str, msg: str, *args: Any, exc_info: bool = False) -> bool:
        """Log ``msg`` at ``level`` unless a line of class ``cls`` went out less than
        ``interval`` ago; True when it was logged."""
        now = self._clock()
        last = self._last.get(cls)
        if last is not None and now - last < self.interval:
            self._suppressed[cls] += 1
            return False
        self._last[cls] = now
        n = self._suppressed.pop(cls, 0)
        if n:
            msg += f" ({n} more like this since the last line)"
        self.logger.log(level, msg, *args, exc_info=exc_info)
        return True

    def warning(self, cls: str, msg: str, *args: Any, exc_info: bool = False) -> bool:
        return self.log(logging.WARNING, cls, msg, *args, exc_info=exc_info)

    def error(self, cls: str, msg: str, *args: Any, exc_info: bool = False) -> bool:
        return self.log(logging.ERROR, cls, msg, *args, exc_info=exc_info)

    def info(self, cls: str, msg: str, *args: Any, exc_info: bool = False) -> bool:
        return self.log(logging.INFO, cls, msg, *args, exc_info=exc_info)


__all__ = ["LogLimiter"]
