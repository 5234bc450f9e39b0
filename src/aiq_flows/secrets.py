"""Keep secrets out of logs.

Every secret the process learns (partner and user keys when a block is loaded, tokens when AIQ
issues them) is registered here; `RedactingFilter` replaces any of them in a log record's final
message and in its exception text. Installed on the handlers of the root and Prefect loggers, it
covers the console and the logs Prefect ships to its API.
"""

from __future__ import annotations

import logging
import threading

MASK = "**********"
_MIN_SECRET_LENGTH = 6  # shorter strings would mask ordinary words
_lock = threading.Lock()
_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    if value and len(value) >= _MIN_SECRET_LENGTH:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(text)
            record.exc_info = None
        return True


_FILTER = RedactingFilter()


def install_redaction(*logger_names: str) -> None:
    """Attach the filter to every handler of the given loggers (root and Prefect's by default)."""
    names = logger_names or ("", "prefect", "prefect.flow_runs", "prefect.task_runs")
    for name in names:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
        for handler in logger.handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)
