"""Logging for liucun: the library logs, the application configures.

Every module logs to ``logging.getLogger("liucun.<layer>")`` and nothing configures
logging at import. An application (the CLI, a service) calls :func:`configure_logging`
once: it installs one handler on the ``liucun`` logger that writes to standard error as
text or as JSON Lines, with :class:`RedactContactData` in front of it, so no e-mail
address or phone number reaches a log line.

Without :func:`configure_logging`, Python's last-resort handler still prints warnings
(such as "upgraded the state database …") to standard error.

>>> configure_logging("json", "info")  # doctest: +SKIP
>>> logging.getLogger("liucun.ingest").info("loaded %d rows", 12, extra={"source": "a.csv"})
{"ts": "2026-12-03T08:41:31.052Z", "level": "info", "logger": "liucun.ingest", ...}
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Final, Literal, TextIO

from liucun.core._errors import ConfigError, Hint

LogFormat = Literal["text", "json"]
LOG_FORMATS: Final = ("text", "json")
LOG_LEVELS: Final = ("debug", "info", "warning", "error", "critical")

#: What replaces a contact detail in a log record.
EMAIL_MARK: Final = "[email]"
PHONE_MARK: Final = "[phone]"

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# A phone number: an optional +country code, an optional (area code), then groups of
# digits separated by at most one space, dot or dash; never inside a word, a decimal
# number, a date-time (``2026-12-03 08:41``) or a longer run of digits. 9–15 digits
# (E.164 allows at most 15) are checked in _phone. A bare run of 9–15 digits counts as a
# phone number (mobiles are often written so): log counts with separators (``{:,}``).
_PHONE = re.compile(
    r"(?<![\w.+\-])"
    r"(?:\+\d{1,3}[ .\-]?)?"
    r"(?:\(\d{1,4}\)[ .\-]?)?"
    r"\d{2,4}(?:[ .\-]?\d{2,4}){1,5}"
    r"(?![\w:\-]|\.\d|[ ]?\d)"
)
_MIN_DIGITS, _MAX_DIGITS = 9, 15

#: The attributes every LogRecord has; anything else on a record is an ``extra``.
_RECORD_FIELDS: Final = frozenset(
    set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
)
_HANDLER_NAME = "liucun"


def _phone(match: re.Match[str]) -> str:
    digits = sum(c.isdigit() for c in match.group())
    return PHONE_MARK if _MIN_DIGITS <= digits <= _MAX_DIGITS else match.group()


def redact_contact_data(text: str) -> str:
    """``text`` with every e-mail address and phone number replaced by a mark.

    >>> redact_contact_data("mail li.wei@example.cn or call +86 138 0013 8000 about 12,345 rows")
    'mail [email] or call [phone] about 12,345 rows'
    """
    return _PHONE.sub(_phone, _EMAIL.sub(EMAIL_MARK, text))


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact_contact_data(value)
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redacted(v) for v in value)
    return value


class RedactContactData(logging.Filter):
    """Replaces e-mail addresses and phone numbers in a record's message, its extras and
    its exception text; the record passes on, redacted in place (so every handler after
    this one sees the redacted record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # arguments that do not fit the format
            message = f"{record.msg} {record.args!r}"
        record.msg, record.args = redact_contact_data(message), None
        for key, value in list(vars(record).items()):
            if key not in _RECORD_FIELDS:
                setattr(record, key, _redacted(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_contact_data(record.exc_text)
        # formatters print exc_text when it is set, so the traceback shown is redacted
        if record.stack_info:
            record.stack_info = redact_contact_data(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts`` (UTC, ISO 8601 with milliseconds), ``level``,
    ``logger``, ``message``, then the record's extras, and ``exc`` for a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC)
        out: dict[str, Any] = {
            "ts": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and key not in out:
                out[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = record.stack_info
        return json.dumps(out, ensure_ascii=False, default=str)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of the record (test runners and
    notebooks replace it), like Python's last-resort handler."""

    def __init__(self) -> None:
        super().__init__()

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def configure_logging(
    fmt: LogFormat = "text", level: str | int = "warning", *, stream: TextIO | None = None
) -> logging.Handler:
    """Send liucun's log records to standard error (or ``stream``) as text or JSON Lines.

    For applications only (the CLI calls it once per run); the library never does.
    Calling it again replaces the handler it installed before, so it is idempotent.
    Records below ``level`` (a name such as ``"info"`` or a number) are dropped; every
    record passes through :class:`RedactContactData` first.

    Raises
    ------
    ValueError
        ``fmt`` or ``level`` is not one of the known names.
    """
    if fmt not in LOG_FORMATS:
        raise ConfigError(
            f"log format {fmt!r} is unknown; use text or json",
            hint=Hint(option="log_format", example="json"),
        )
    if isinstance(level, str):
        if level.lower() not in LOG_LEVELS:
            raise ConfigError(
                f"log level {level!r} is unknown; use one of {', '.join(LOG_LEVELS)}",
                hint=Hint(option="log_level", example="info"),
            )
        level = logging.getLevelNamesMapping()[level.upper()]
    handler: logging.Handler = _StderrHandler() if stream is None else logging.StreamHandler(stream)
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(RedactContactData())
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(levelname)s %(name)s: %(message)s")
    )
    logger = logging.getLogger("liucun")
    for old in [h for h in logger.handlers if h.get_name() == _HANDLER_NAME]:
        logger.removeHandler(old)
        old.close()
    logger.addHandler(handler)
    logger.setLevel(level)
    return handler


@contextlib.contextmanager
def logging_configured(
    fmt: LogFormat = "text", level: str | int = "warning", *, stream: TextIO | None = None
) -> Iterator[logging.Handler]:
    """:func:`configure_logging` for the duration of a block, then the ``liucun`` logger
    as it was: what the CLI uses for one command, so running commands in-process (tests,
    notebooks) leaves the host's logging alone."""
    logger = logging.getLogger("liucun")
    before = logger.level
    handler = configure_logging(fmt, level, stream=stream)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        handler.close()
        logger.setLevel(before)
