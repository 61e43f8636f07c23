"""Where log records go: ``--log-format text|json`` and ``--log-level`` (DESIGN 3.7).

``text`` is one line per record, ``<ts> <LEVEL> <logger>: <message>``, for a terminal or a
journal; ``json`` is one object per line for a log pipeline (Loki, Elasticsearch, a cloud
logging agent): ``ts`` (RFC 3339, UTC, milliseconds), ``level``, ``logger``, ``message``,
every extra field the record carries (``extra={...}``: a job id, a URL ...), and
``exception`` / ``stack`` when there are. uvicorn's loggers, the access log included
(``client``, ``method``, ``path``, ``status`` as fields), go through the same handler:
``serve`` and ``simulator`` hand uvicorn no logging config of its own
(:func:`uvicorn_options`); a command's own stderr line goes through :func:`stderr_line`.

Secrets never reach the output (SECURITY R49): the handler carries the client's
:class:`RedactingFilter` (``install_redaction``: message, arguments, traceback; URLs lose
their query), and the JSON formatter redacts every extra field as well, which the filter
does not see (a secret member of a dict-valued field is masked by its key).

Hand-written, on ``logging.Formatter``: the project has no JSON-logging dependency, and
python-json-logger or structlog would add one for thirty lines; ``json.dumps`` over the
record's fields is all a line needs. The handler writes to the ``sys.stderr`` of the moment
(as ``logging.lastResort`` does), so a test runner that swaps stderr gets the lines.
The client package (httpx2, for its redaction) is imported when the first record is
written, so commands that log nothing stay as light as before.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO, TypeVar

import click

__all__ = [
    "LOG_FORMATS",
    "LOG_LEVELS",
    "JsonFormatter",
    "TextFormatter",
    "configure_logging",
    "log_options",
    "stderr_line",
    "uvicorn_options",
]

LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")

#: LogRecord attributes that are not "extra" fields (and uvicorn's ANSI-coloured copy of
#: its message); anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "color_message",
    "taskName",
}
#: uvicorn's access record arguments (its AccessFormatter unpacks them the same way).
_ACCESS = ("client", "method", "path", "http_version", "status")


def _ts(record: logging.LogRecord) -> str:
    when = datetime.fromtimestamp(record.created, UTC)
    return f"{when:%Y-%m-%dT%H:%M:%S}.{int(record.msecs):03d}Z"


def _redact(text: str) -> str:  # the client's patterns (imported on first use: httpx2)
    from ..client import redact

    return redact(text)


def _plain(value: object, depth: int = 0) -> object:
    """``value`` as JSON types: numbers, booleans and strings kept, containers walked,
    anything else (and non-finite floats) as its ``str``."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if depth < 4 and isinstance(value, list | tuple | set | frozenset):
        return [_plain(item, depth + 1) for item in value]
    if depth < 4 and isinstance(value, dict):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    return str(value)


def _field(key: str, value: object) -> object:
    """An extra field, redacted as its JSON rendering ``{"key": value}``: URLs lose their
    query and a value under a secret's name (``code``, ``access_token`` ..., nested too)
    is masked, by the client's own patterns."""
    rendered = _redact(json.dumps({key: _plain(value)}, ensure_ascii=False))
    try:
        return json.loads(rendered)[key]
    except (ValueError, KeyError):  # never expected: the patterns keep JSON intact
        return _redact(str(value))


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        # The handler's filter has redacted message, traceback and stack already; doing it
        # again here (redaction is idempotent) covers a record formatted without the filter.
        entry: dict[str, object] = {
            "ts": _ts(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": _redact(record.getMessage()),
        }
        args = record.args
        if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
            for key, value in zip(_ACCESS, args, strict=True):
                if key == "path" and isinstance(value, str):
                    value = value.split("?", 1)[0]  # the target without its query (R49)
                entry[key] = _field(key, value)
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and key not in entry:
                entry[key] = _field(key, value)
        exception = record.exc_text
        if record.exc_info and record.exc_info[0] is not None:
            exception = self.formatException(record.exc_info)
        if exception:
            entry["exception"] = _redact(exception)
        if record.stack_info:
            entry["stack"] = _redact(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``<ts> <LEVEL> <logger>: <message>``, the traceback below it; the same timestamps as
    :class:`JsonFormatter`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _ts(record)


class _Redaction(logging.Filter):
    """The client's redaction filter, looked up (and the library loggers given theirs) when
    the first record arrives."""

    def __init__(self) -> None:
        super().__init__()
        self._inner: logging.Filter | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if self._inner is None:
            from ..client import install_redaction

            self._inner = install_redaction()
        return self._inner.filter(record)


class _Handler(logging.StreamHandler[TextIO]):
    """Writes to the current ``sys.stderr``; the one handler :func:`configure_logging` owns."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass  # always the stderr of the moment


def _ours() -> _Handler | None:
    return next((h for h in logging.getLogger().handlers if isinstance(h, _Handler)), None)


def configure_logging(log_format: str | None = None, level: str | None = None) -> None:
    """Send log records at ``level`` and above to stderr as ``log_format`` (None: keep what
    is set; at first ``text`` and ``warning``). Idempotent: the handler this installed
    before is replaced, other handlers (a test's capture) are left alone."""
    root = logging.getLogger()
    previous = _ours()
    if log_format is None:
        log_format = (
            "json" if previous and isinstance(previous.formatter, JsonFormatter) else "text"
        )
    levelno = previous.level if previous is not None and level is None else None
    if levelno is None:
        levelno = logging.getLevelNamesMapping()[(level or "warning").upper()]
    if log_format not in LOG_FORMATS:
        raise click.BadParameter(f"unknown log format {log_format!r}")
    handler = _Handler()
    handler.setLevel(levelno)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(_Redaction())
    if previous is not None:
        root.removeHandler(previous)
    root.addHandler(handler)
    if root.getEffectiveLevel() > levelno:
        root.setLevel(levelno)
    if levelno <= logging.DEBUG:
        from ..client import quiet_debug

        quiet_debug("oauthlib")  # its DEBUG lines are grants and tokens in the clear (R49)


def stderr_line(message: str, level: int = logging.INFO) -> None:
    """A line for whoever watches stderr (``Simulator stopped.``, a worker's tally, a
    warning about the set-up): as is in ``text`` format; in ``json`` a record of the
    ``greenbutton.cli`` logger at ``level``, so the stream stays one JSON object per line.
    Shown whatever ``--log-level`` is, as the text line is: it is the command's own output,
    not a library's log."""
    handler = _ours()
    if handler is not None and isinstance(handler.formatter, JsonFormatter):
        logger = logging.getLogger("greenbutton.cli")
        handler.handle(logger.makeRecord(logger.name, level, "(cli)", 0, message, (), None))
    else:
        click.echo(message, err=True)


def uvicorn_options() -> dict[str, Any]:
    """``uvicorn.Config`` options that leave uvicorn's records to our handler: no logging
    config of its own, its loggers at our level (so the access log shows at ``info``)."""
    handler = _ours()
    return {"log_config": None, "log_level": logging.WARNING if handler is None else handler.level}


F = TypeVar("F", bound=Callable[..., Any])

_FORMAT_HELP = (
    "How log records are written to stderr: text lines, or one JSON object per line "
    "(ts, level, logger, message and the record's fields)."
)
_LEVEL_HELP = "The least severe log records shown."


def _reconfigure(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        if param.name == "log_format":
            configure_logging(log_format=value)
        else:
            configure_logging(level=value)


def log_options(*, group: bool = False) -> Callable[[F], F]:
    """``--log-format`` and ``--log-level``: on the ``greenbutton`` group (defaults, and the
    environment variables ``GREENBUTTON_LOG_FORMAT`` / ``GREENBUTTON_LOG_LEVEL``; the
    group's function calls :func:`configure_logging`), and again on the long-running
    commands, where they override the group's (``greenbutton worker --log-format json``)."""
    formats = click.Choice(LOG_FORMATS, case_sensitive=False)
    levels = click.Choice(LOG_LEVELS, case_sensitive=False)

    def decorate(function: F) -> F:
        if group:
            level = click.option(
                "--log-level", type=levels, default="warning", show_default=True,
                envvar="GREENBUTTON_LOG_LEVEL", show_envvar=True, help=_LEVEL_HELP,
            )  # fmt: skip
            form = click.option(
                "--log-format", type=formats, default="text", show_default=True,
                envvar="GREENBUTTON_LOG_FORMAT", show_envvar=True, help=_FORMAT_HELP,
            )  # fmt: skip
        else:
            level = click.option(
                "--log-level", type=levels, expose_value=False, callback=_reconfigure,
                help=f"{_LEVEL_HELP} [default: the greenbutton group's, warning]",
            )  # fmt: skip
            form = click.option(
                "--log-format", type=formats, expose_value=False, callback=_reconfigure,
                help=f"{_FORMAT_HELP} [default: the greenbutton group's, text]",
            )  # fmt: skip
        return form(level(function))

    return decorate
