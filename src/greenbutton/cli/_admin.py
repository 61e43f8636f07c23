"""``greenbutton admin add-user``: an operator of the console at /admin (DESIGN 3.7).

Thin: the password comes from stdin (asked twice without echo on a terminal; the first
line otherwise, for scripts: ``printf '%s\\n' "$PW" | greenbutton admin add-user ops``),
never from an option, which would leave it in the shell history and the process list;
:func:`greenbutton.storage.add_admin_user` hashes it (scrypt) and stores it.
"""

from __future__ import annotations

import sys

import click

from . import cli
from ._db import _database_errors, _database_option

__all__ = ["admin_group"]


@cli.group("admin")
def admin_group() -> None:
    """Operators of the web app's console at /admin."""


@admin_group.command("add-user")
@click.argument("name")
@_database_option
@click.option("--replace", is_flag=True, help="Set a new password for an existing operator.")
def add_user(name: str, database_url: str | None, replace: bool) -> None:
    """Add operator NAME, reading the password from stdin (at least 12 characters).

    \b
    Examples:
      greenbutton admin add-user ops                      # asks twice, no echo
      printf '%s\\n' "$PW" | greenbutton admin add-user ops --database URL
    """
    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise click.UsageError("no password on stdin")
    from ..storage import Store, add_admin_user

    with _database_errors(), Store.open(database_url) as store:
        created = add_admin_user(store, name, password, replace=replace)
    click.echo(f"operator {name!r} {'added' if created else 'updated'}; sign in at /admin/login")
