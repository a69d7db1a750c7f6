"""Catch a logger's lines at the source. Under pytest the in-process task logs go to whatever stream
Airflow's logging captured when it was first set up, not to the night's log file nor reliably to capfd:
a search for a leaked secret must provably hold the lines a leak would be in."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextmanager
def caught(logger_name: str) -> Iterator[Lines]:
    """Every line `logger_name` logs inside the block (enabled for the block even if a config disabled it)."""
    logger = logging.getLogger(logger_name)
    lines = Lines()
    logger.addHandler(lines)
    was_disabled, logger.disabled = logger.disabled, False
    try:
        yield lines
    finally:
        logger.removeHandler(lines)
        logger.disabled = was_disabled
