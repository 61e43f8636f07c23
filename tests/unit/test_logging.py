"""``--log-format json`` (issue 10.5): one JSON object per record with ts, level, logger,
message, the record's extra fields and its exception, never a secret or a query string
(SECURITY R49); ``configure_logging`` replaces its own handler and leaves others alone;
the command options override the group's."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from greenbutton.cli import cli
from greenbutton.cli._logging import (
    JsonFormatter,
    TextFormatter,
    _Handler,
    configure_logging,
    stderr_line,
    uvicorn_options,
)

WHEN = datetime(2026, 3, 8, 9, 59, 58, 250000, tzinfo=UTC).timestamp()  # a DST morning (US)


def _record(
    msg: str = "job %d done",
    args: tuple[object, ...] = (7,),
    *,
    name: str = "greenbutton.storage",
    level: int = logging.INFO,
    exc: bool = False,
    **extra: object,
) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("token endpoint said: access_token=abcdefghijklmnopqrstu")
        except ValueError:
            import sys

            exc_info = sys.exc_info()
    record = logging.LogRecord(name, level, __file__, 10, msg, args, exc_info)
    record.created, record.msecs = WHEN, 250.0
    record.__dict__.update(extra)
    return record


def _json(record: logging.LogRecord) -> dict[str, object]:
    line = JsonFormatter().format(record)
    assert "\n" not in line  # one object per line, a traceback included
    found = json.loads(line)
    assert isinstance(found, dict)
    return found


@pytest.fixture
def root() -> Iterator[logging.Logger]:
    """The root logger, given back without our handler and at its level afterwards."""
    logger = logging.getLogger()
    level = logger.level
    yield logger
    for handler in [h for h in logger.handlers if isinstance(h, _Handler)]:
        logger.removeHandler(handler)
    logger.setLevel(level)


def test_a_record_is_one_object_with_the_four_keys() -> None:
    assert _json(_record()) == {
        "ts": "2026-03-08T09:59:58.250Z",  # RFC 3339, UTC, milliseconds
        "level": "info",
        "logger": "greenbutton.storage",
        "message": "job 7 done",
    }


def test_extra_fields_come_along_redacted() -> None:
    entry = _json(
        _record(
            job_id=7,
            uri="https://api.example.com/espi/1_1/resource/Batch/Subscription/5?code=abc&x=1",
            attempt=2.5,
            done=True,
            where=Path("/var/lib/gb"),
            grant={"code": "s3cr3t", "scope": ["FB=1_3"], "nested": {"refresh_token": "r"}},
            _private="left out",
        )
    )
    assert entry["job_id"] == 7 and entry["attempt"] == 2.5 and entry["done"] is True
    assert entry["uri"] == "https://api.example.com/espi/1_1/resource/Batch/Subscription/5"
    assert entry["where"] == "/var/lib/gb"  # not JSON: its str
    assert entry["grant"] == {
        "code": "[REDACTED]",
        "scope": ["FB=1_3"],
        "nested": {"refresh_token": "[REDACTED]"},
    }
    assert "_private" not in entry


def test_a_url_with_a_query_in_the_message_loses_the_query() -> None:
    record = _record(
        "GET %s -> %d",
        ("https://u.example/OAuthCallback?code=abc123&state=xyz", 302),
        name="httpx2",
    )
    entry = _json(record)
    assert entry["message"] == "GET https://u.example/OAuthCallback -> 302"
    assert "abc123" not in json.dumps(entry)


def test_an_exception_is_its_traceback_text_redacted() -> None:
    entry = _json(_record("job %d failed", (7,), level=logging.ERROR, exc=True))
    assert entry["level"] == "error" and entry["message"] == "job 7 failed"
    exception = entry["exception"]
    assert isinstance(exception, str)
    assert exception.startswith("Traceback (most recent call last):")
    assert "ValueError: token endpoint said: access_token=[REDACTED]" in exception
    assert "abcdefghijklmnopqrstu" not in exception


def test_a_record_the_filter_redacted_is_not_masked_twice() -> None:
    """The handler's filter redacts first, the formatter again: the mask stays one mask."""
    from greenbutton.client import install_redaction

    record = _record("sent Authorization: %s", ("Bearer abc.def",), exc=True)
    assert install_redaction().filter(record)
    entry = _json(record)
    assert entry["message"] == "sent Authorization: Bearer [REDACTED]"
    assert str(entry["exception"]).endswith("access_token=[REDACTED]")


def test_an_extra_field_never_replaces_the_own_keys() -> None:
    entry = _json(_record(level=logging.WARNING, logger="mine", ts="then"))
    assert entry["logger"] == "greenbutton.storage" and entry["ts"] != "then"


def test_text_lines_have_the_same_timestamp() -> None:
    line = TextFormatter().format(_record())
    assert line == "2026-03-08T09:59:58.250Z INFO greenbutton.storage: job 7 done"


def test_the_handler_redacts_uvicorns_access_log_and_gives_its_fields(
    root: logging.Logger, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    configure_logging("json", "info")
    access = logging.getLogger("uvicorn.access")
    monkeypatch.setattr(access, "propagate", True)  # uvicorn's own config may have unset it
    monkeypatch.setattr(access, "handlers", [])
    monkeypatch.setattr(access, "level", logging.INFO)
    access.info(
        '%s - "%s %s HTTP/%s" %d',
        "127.0.0.1:50000",
        "GET",
        "/OAuthCallback?code=abc123&state=xyz",
        "1.1",
        302,
    )
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert len(lines) == 1
    entry = lines[0]
    assert entry["logger"] == "uvicorn.access"
    assert entry["message"] == '127.0.0.1:50000 - "GET /OAuthCallback HTTP/1.1" 302'
    assert (entry["client"], entry["method"], entry["path"], entry["status"]) == (
        "127.0.0.1:50000",
        "GET",
        "/OAuthCallback",
        302,
    )


def test_configure_logging_replaces_its_own_handler_only(
    root: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    other = logging.NullHandler()
    root.addHandler(other)
    try:
        configure_logging("json", "info")
        configure_logging(level="error")  # keeps json
        ours = [h for h in root.handlers if isinstance(h, _Handler)]
        assert len(ours) == 1 and other in root.handlers
        assert ours[0].level == logging.ERROR and isinstance(ours[0].formatter, JsonFormatter)
        assert uvicorn_options() == {"log_config": None, "log_level": logging.ERROR}
        log = logging.getLogger("greenbutton.test_logging")
        log.warning("not shown")
        log.error("shown: Authorization: Bearer abc.def")
        err = capsys.readouterr().err
        assert "not shown" not in err
        assert json.loads(err)["message"] == "shown: Authorization: Bearer [REDACTED]"
    finally:
        root.removeHandler(other)


def test_a_commands_own_line_is_shown_at_any_level_in_either_format(
    root: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    """``stderr_line`` (a worker's tally, serve's set-up warnings): text as is, json as a
    ``greenbutton.cli`` record at the given level; ``--log-level error`` hides neither,
    as it hides no line of a command's own output."""
    configure_logging("text", "error")
    stderr_line("attempts made here: 3 done")
    assert capsys.readouterr().err == "attempts made here: 3 done\n"
    configure_logging("json", "error")
    stderr_line("attempts made here: 3 done")
    stderr_line("warning: no --client-ca", logging.WARNING)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(x["logger"], x["level"], x["message"]) for x in lines] == [
        ("greenbutton.cli", "info", "attempts made here: 3 done"),
        ("greenbutton.cli", "warning", "warning: no --client-ca"),
    ]


def test_a_command_option_overrides_the_group(root: logging.Logger, tmp_path: Path) -> None:
    """``greenbutton --log-format json worker --log-level info ...``: the worker's option
    changes the level and keeps the group's format (it fails afterwards: no simulator)."""
    result = CliRunner().invoke(
        cli,
        ["--log-format", "json", "worker", "--log-level", "info",
         "--database", f"sqlite:///{tmp_path / 'gb.db'}", "--simulator", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 1 and "registration not found" in result.output
    ours = [h for h in root.handlers if isinstance(h, _Handler)]
    assert len(ours) == 1
    assert ours[0].level == logging.INFO and isinstance(ours[0].formatter, JsonFormatter)


def test_the_group_option_reads_the_environment(root: logging.Logger) -> None:
    result = CliRunner().invoke(cli, ["inspect", "--help"], env={"GREENBUTTON_LOG_FORMAT": "json"})
    assert result.exit_code == 0
    ours = [h for h in root.handlers if isinstance(h, _Handler)]
    assert len(ours) == 1 and isinstance(ours[0].formatter, JsonFormatter)
    assert ours[0].level == logging.WARNING
