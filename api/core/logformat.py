"""Log lines as JSON objects, one a line (``JIUZHU_LOG_FORMAT=json``), for a log shipper to index.

The standard library's logging does the work; this is only its formatter (a few lines of ``json``,
no library needed). Each line has ``time`` (UTC), ``level``, ``logger`` and ``message``; a line written
while a request is served has its ``request_id``; the request line (api/core/request_log.py) adds its
fields; a traceback goes in ``exc``. Messages and tracebacks are already masked when they get here
(api/core/logmask.py masks every record where it is made); the extra fields are masked here.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

from api.core import request_log
from engine.schema.masking import scrub

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _masked(fields: dict | None) -> dict:
    """A line's extra fields, text masked: the record factory masks a record's message and arguments
    when it is made, before ``extra`` is attached, so these are masked here."""
    return {k: scrub(v) if isinstance(v, str) else v for k, v in (fields or {}).items()}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        info = request_log.current.get()
        if info is not None:
            out["request_id"] = info.request_id
        out.update(_masked(getattr(record, "fields", None)))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = record.stack_info
        return json.dumps(out, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The plain format, with the request line's fields appended as ``name=value``."""

    def __init__(self):
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = _masked(getattr(record, "fields", None))
        if extra:
            line += " " + " ".join(f"{k}={v}" for k, v in extra.items() if k not in ("method", "route", "status"))
        return line


def formatter(kind: str) -> logging.Formatter:
    return JsonFormatter() if kind == "json" else TextFormatter()
