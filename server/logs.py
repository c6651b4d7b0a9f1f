"""One JSON object per log line, so the per-event lines can be shipped and queried."""
from __future__ import annotations

import atexit
import json
import logging
import logging.handlers
import queue as queue_mod
import sys
import time


class _QueueHandler(logging.handlers.QueueHandler):
    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        # The stock prepare() formats the message on the caller's thread; the listener's
        # JsonFormatter does all formatting, so hand the record over untouched.
        return record


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            out.update(fields)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def setup_logging(level: str = "INFO", instance: str = "") -> None:
    """JSON lines on stderr, formatted and written by a thread, not the event loop.

    Every handled event logs a line, so the loop's share must stay small: records only go
    onto a queue here, and caller/thread/process lookups we never print are switched off.
    """
    logging._srcfile = None  # no findCaller() per record
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    queue: queue_mod.SimpleQueue = queue_mod.SimpleQueue()
    listener = logging.handlers.QueueListener(queue, handler, respect_handler_level=False)
    listener.start()
    atexit.register(listener.stop)
    root = logging.getLogger()
    root.handlers[:] = [_QueueHandler(queue)]
    root.setLevel(level.upper())
    # The Socket.IO libraries log every packet at INFO; our event lines replace that.
    for noisy in ("socketio", "engineio", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
