"""One line per event on stderr: ``key=value`` text for people, or JSON for collectors.

The service logs through :mod:`logging` (``aoe_pack.serve``, and uvicorn's own
``uvicorn`` loggers); a record's ``fields`` (``extra={"fields": {...}}``)
become members of the line, so a log collector can match ``event``,
``code`` or ``manifestVersion`` without parsing English.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any, TextIO

LOGGERS = ("aoe_pack.serve", "uvicorn")


class LineFormatter(logging.Formatter):
    """A record as one line (plus its traceback, if any)."""

    def __init__(self, *, as_json: bool) -> None:
        super().__init__()
        self.as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        when = dt.datetime.fromtimestamp(record.created, dt.UTC)
        line: dict[str, Any] = {
            "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        if self.as_json:
            return json.dumps(line, default=str)
        trace = line.pop("traceback", None)
        head = " ".join(str(line.pop(k)) for k in ("time", "level", "event"))
        del line["logger"]
        text = " ".join([head, *(f"{k}={_value(v)}" for k, v in line.items())])
        return f"{text}\n{trace}" if trace else text


def _value(v: Any) -> str:
    text = v if isinstance(v, str) else json.dumps(v, default=str)
    return json.dumps(text) if not text or any(c in text for c in ' "=\n') else text


def configure(stream: TextIO, *, as_json: bool) -> None:
    """Send the service's and uvicorn's records, from INFO up, to ``stream``."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(LineFormatter(as_json=as_json))
    for name in LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(logging.INFO)
        logger.propagate = False
