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
    """Every line `logger_name` and the loggers under it log inside the block (each enabled for the block even
    if a config disabled it)."""
    logger = logging.getLogger(logger_name)
    family = [logger, *(logging.getLogger(n) for n in list(logging.root.manager.loggerDict)
                        if n.startswith(logger_name + "."))]
    lines = Lines()
    logger.addHandler(lines)
    was_disabled = [(member, member.disabled) for member in family]
    for member in family:
        member.disabled = False
    try:
        yield lines
    finally:
        logger.removeHandler(lines)
        for member, disabled in was_disabled:
            member.disabled = disabled
