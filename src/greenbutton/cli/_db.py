"""``greenbutton sync`` and ``accounts``: the ingest loop and what it stored.

The database holds the tokens (encrypted, :class:`~greenbutton.storage.DatabaseTokenStore`).
``authorize`` writes the JSON token store, so ``sync`` first imports that store's
authorizations for the utility into the database when the database has no copy or an
older one (a new ``authorize``); after that the database copy is the one refreshed. The
JSON copy is not updated: where the custodian rotates refresh tokens, ``fetch`` with it may
then need a new ``authorize``, which ``sync`` picks up again.

A database that fails (read-only, locked past the lock timeout, corrupt, unreachable) is
one ``error:`` line saying what to do, not a traceback: the operator can act on the file,
not on the stack.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..client import Client
from ..oauth import FileTokenStore
from . import cli
from ._output import echo_json, output_options
from ._sdk import (
    _DATE,
    _store_option,
    _utc,
    _utility,
    _utility_options,
    default_store_path as _default_store_path,
)

if TYPE_CHECKING:
    from ..storage import SyncReport

__all__ = ["accounts", "sync"]


def _database_option(fn: Any) -> Any:
    return click.option(
        "--database",
        "database_url",
        metavar="URL",
        help="SQLAlchemy URL (sqlite:///FILE or postgresql://...). "
        "[default: GREENBUTTON_DATABASE_URL, else greenbutton.db in the user data folder]",
    )(fn)


def _import_tokens(store: Any, tokens: Any, path: Path, utility: str) -> int:
    """Copy the JSON store's customer tokens the database lacks or holds older copies of."""
    from ..storage import authorization_versions

    source = FileTokenStore(path, utility)
    entries = source.entries()
    if not entries:
        return 0
    stored = authorization_versions(store)
    count = 0
    for key, entry in entries.items():
        saved = entry.get("saved_at")
        if key in stored and stored[key] >= float(saved or 0):
            continue
        token = source.load(key)
        if token is not None:
            tokens.save(key, token)
            count += 1
    return count


_HINTS = (  # (words in the driver's message, what to do), first match wins
    (("readonly", "read-only", "read only"), "make the database file and its folder writable"),
    (
        ("locked", "lock timeout", "lock_timeout"),
        "another program holds the database lock: "
        "let it finish (or stop it), then run the command again",
    ),  # fmt: skip
    (
        ("malformed", "not a database", "corrupt"),
        "the file is damaged: restore it from a "
        "backup or use a new --database (the next sync fetches the data again)",
    ),  # fmt: skip
    (("disk", "full"), "free some disk space, then run the command again"),
)


def _hint(message: str) -> str:
    low = message.lower()
    for words, hint in _HINTS:
        if any(w in low for w in words):
            return hint
    return "check the --database URL and that the database is reachable and writable"


@contextmanager
def _database_errors() -> Iterator[None]:
    """A failing database as one ``error: ...`` line with what to do (``--debug``: raise)."""
    from sqlalchemy.exc import DBAPIError

    from ..storage import StorageError

    try:
        yield
    except (StorageError, DBAPIError) as exc:
        ctx = click.get_current_context(silent=True)
        if ctx is not None and ctx.meta.get("greenbutton.debug"):
            raise
        cause = exc.orig if isinstance(exc, DBAPIError) else exc
        detail = " ".join(str(cause).split()) or type(exc).__name__
        detail = detail.removeprefix("the database failed: ")
        raise click.ClickException(f"the database failed ({detail}); {_hint(detail)}") from exc


def _when(epoch: float | int | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M")


@cli.command()
@_utility_options
@_database_option
@_store_option
@click.option(
    "--authorization",
    "keys",
    metavar="KEY",
    multiple=True,
    help="Sync only this stored authorization (repeatable). [default: all of the utility]",
)
@click.option(
    "--since",
    type=_DATE,
    help="History start (UTC) for usage points with nothing stored; earlier than the stored "
    "data, it also backfills. [default: 365 days ago]",
)
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Run again the jobs earlier syncs gave up on (listed by greenbutton accounts).",
)
@click.option(
    "--enqueue-only",
    is_flag=True,
    help="Plan the jobs (catch-up windows, gaps, re-requests) and exit without running them: "
    "the web app's worker or a later sync runs them.",
)
def sync(
    simulator_dir: Path | None,
    config_path: Path | None,
    profile: str | None,
    database_url: str | None,
    store_path: Path | None,
    keys: tuple[str, ...],
    since: datetime | None,
    retry_failed: bool,
    enqueue_only: bool,
) -> None:
    """Fetch new and missing readings of every stored authorization into the database.

    Resumes jobs an interrupted run left, polls from each usage point's last stored
    reading up to now (catching up on missed notifications), and re-requests holes in
    the stored readings. Safe to interrupt: every window commits with its job, and the
    next run finishes the rest. Progress on stderr (when it is a terminal); a summary on
    stdout; exit 1 when some job or authorization failed in this run.

    A job that fails 5 times is abandoned: that run lists it and exits 1. A window given
    up on whose data is still missing is asked for again once a day; failing again there
    is reported but does not make the run exit 1. `accounts` lists abandoned jobs;
    --retry-failed runs them all again now.

    \b
    Examples:
      greenbutton sync --simulator DIR --since 2024-01-01
      greenbutton sync --profile pge --database postgresql://gb@localhost/gb
      greenbutton sync --retry-failed
      greenbutton sync --enqueue-only     # plan now; serve's worker fetches
    """
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from ..storage import DatabaseTokenStore, Store, shared_limits, sync as run_sync

    utility = _utility(simulator_dir, config_path, profile)
    console = Console(stderr=True)
    options: dict[str, Any] = {
        "authorizations": keys or None,
        "since": _utc(since),
        "retry_failed": retry_failed,
        "enqueue_only": enqueue_only,
    }
    with _database_errors(), Store.open(database_url) as store:
        tokens = DatabaseTokenStore(store)
        imported = _import_tokens(
            store, tokens, store_path or _default_store_path(), utility[0].resource_url
        )
        if imported:
            click.echo(f"imported {imported} authorization(s) from the token store", err=True)
        with shared_limits(store):  # PostgreSQL: one rate limit with every worker, DESIGN 3.7
            client = Client(*utility, token_store=tokens)
        with client:
            if console.is_terminal:
                columns = (
                    TextColumn("sync"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeElapsedColumn(),
                    TextColumn("eta"),
                    TimeRemainingColumn(),
                    TextColumn("{task.fields[what]}", style="dim"),
                )
                with Progress(*columns, console=console, transient=True) as bar:
                    task = bar.add_task("sync", total=None, what="planning")

                    def show(done: int, total: int, what: str) -> None:
                        bar.update(task, completed=done, total=total or None, what=_short(what))

                    report = run_sync(store, client, progress=show, **options)
            else:
                report = run_sync(store, client, **options)
    _print_report(report)
    if not report.ok:
        sys.exit(1)


def _short(uri: str) -> str:
    """The account part of a job's URI for the progress line: ``Subscription/5/UsagePoint/1``
    rather than the whole URL with its query."""
    path = uri.split("?", 1)[0]
    for marker in ("/Subscription/", "/Batch/", "/Bulk/"):
        if marker in path:
            return marker.lstrip("/") + path.split(marker, 1)[1]
    return path.rsplit("/", 2)[-1] if "/" in path else path


def _print_report(report: SyncReport) -> None:
    if report.planned is not None:
        click.echo(f"jobs planned: {report.planned} (not run: --enqueue-only)")
    if report.requeued:
        click.echo(f"abandoned jobs re-queued: {report.requeued}")
    click.echo(f"jobs run: {report.jobs_run} (resumed from an earlier run: {report.resumed})")
    click.echo(f"gaps re-requested: {report.gaps}")
    if report.retried:
        click.echo(f"abandoned windows asked for again: {report.retried}")
    if report.elsewhere:
        click.echo(f"jobs in progress elsewhere: {len(report.elsewhere)}")
    for point, added in report.readings.items():
        click.echo(f"readings added: {added:,} {point}")
    for key, why in report.skipped.items():
        click.echo(f"skipped {key}: {why}", err=True)
    if report.abandoned:
        click.echo(
            f"{len(report.abandoned)} job(s) abandoned after {report.abandoned[0].attempts} "
            "failed attempts; missing data is re-requested by later syncs, "
            "`greenbutton sync --retry-failed` runs them again",
            err=True,
        )
        for job in report.abandoned[:5]:
            click.echo(f"  abandoned {job.authorization} {job.uri}: {job.error or '-'}", err=True)
        if len(report.abandoned) > 5:
            click.echo(
                f"  ... and {len(report.abandoned) - 5} more (greenbutton accounts)", err=True
            )
    if report.still_abandoned:
        click.echo(
            f"{len(report.still_abandoned)} abandoned window(s) failed again; asked for "
            "again in a day, or now with `greenbutton sync --retry-failed`",
            err=True,
        )
        for job in report.still_abandoned[:5]:
            click.echo(
                f"  still failing {job.authorization} {job.uri}: {job.error or '-'}", err=True
            )
    if report.unfinished:
        click.echo(f"{len(report.unfinished)} job(s) unfinished; run sync again", err=True)
        for error in report.errors[-3:]:
            click.echo(f"  {error}", err=True)


@cli.command()
@_database_option
@output_options(help="One JSON document instead of text.")
def accounts(database_url: str | None, as_json: bool) -> None:
    """List stored authorizations, their usage points, reading counts and coverage.

    Reads the database only (nothing is decrypted or fetched). Readings ingested from
    files appear under "files". Coverage is the first interval start to the last interval
    end, UTC.

    \b
    Examples:
      greenbutton accounts
      greenbutton accounts --database sqlite:///gb.db --json
    """
    from ..storage import Store, accounts as stored_accounts

    with _database_errors(), Store.open(database_url) as store:
        found = stored_accounts(store)
    if as_json:
        echo_json([a.as_dict() for a in found], indent=1)
        return
    if not found:
        click.echo("nothing stored yet: run greenbutton authorize, then greenbutton sync")
        return
    for account in found:
        if account.key is None:
            click.echo("files")
        else:
            click.echo(f"authorization {account.key}")
            click.echo(
                f"  status {account.status}, subscription {account.subscription or '-'}, "
                f"updated {_when(account.updated_at)}"
            )
            if account.pending_jobs or account.failed_jobs or account.abandoned:
                click.echo(
                    f"  jobs: {account.pending_jobs} pending, {account.failed_jobs} failed, "
                    f"{len(account.abandoned)} abandoned"
                )
            for job in account.abandoned:
                click.echo(f"  abandoned after {job.attempts} attempts: {job.uri}")
                click.echo(f"    last error: {job.error or '-'}")
            if account.abandoned:
                click.echo("  (greenbutton sync --retry-failed runs them again)")
        for point in account.usage_points:
            title = f" ({point.title})" if point.title else ""
            click.echo(f"  usage point {point.key}{title}: {point.readings:,} readings")
            for s in point.series:
                step = f", every {s.interval} s" if s.interval else ""
                click.echo(
                    f"    {s.meter_reading}: {s.readings:,} readings, "
                    f"{_when(s.first)} to {_when(s.last)}{step}"
                )
