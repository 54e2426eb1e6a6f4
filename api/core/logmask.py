"""Resident ID numbers never reach a log line: every record is masked where it is made.

A log record factory, not a handler filter: it covers every logger and handler of the
process (uvicorn's access log, refusals that quote the request path, exceptions),
whichever way logging was configured. Arguments are masked one by one, not merged into
the message, because uvicorn's access formatter reads them by position.
"""

from __future__ import annotations

import logging
import traceback

from api.core.logformat import formatter
from engine.schema.masking import scrub, scrub_json

_installed = False


def _mask_arg(a):
    if isinstance(a, str):
        return scrub(a)
    if isinstance(a, bytes | int | float | bool) or a is None:
        return a
    if isinstance(a, dict | list | tuple):
        return scrub_json(a)
    text = str(a)  # an exception, a URL, a path: what %s would print
    masked = scrub(text)
    return a if masked == text else masked


def install_log_masking() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    make = logging.getLogRecordFactory()

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = make(*args, **kwargs)
        if isinstance(record.msg, str):
            record.msg = scrub(record.msg)
        elif record.msg is not None:
            record.msg = _mask_arg(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_mask_arg(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _mask_arg(v) for k, v in record.args.items()}
        if record.exc_info and record.exc_info[0] is not None:
            # Formatters reuse ``exc_text`` when set: the traceback is rendered once, masked.
            record.exc_text = scrub("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return record

    logging.setLogRecordFactory(factory)


def configure_logging(log_format: str = "text") -> None:
    """Logging of every service process (HTTP workers, writer, monitor): INFO, resident IDs masked,
    lines as text or JSON objects (``JIUZHU_LOG_FORMAT``, api/core/logformat.py). A process whose
    logging is already set up (an embedding, pytest) keeps its handlers."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(formatter(log_format))
        root.addHandler(handler)
        root.setLevel(logging.INFO)
    logging.getLogger("jiuzhu").setLevel(logging.INFO)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    install_log_masking()
