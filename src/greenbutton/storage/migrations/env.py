"""Alembic environment: always handed an open connection by ``greenbutton.storage``.

The connection is already inside a transaction, so on PostgreSQL a revision that fails
halfway leaves the old schema intact (transactional DDL, SECURITY R67).
"""

from __future__ import annotations

from alembic import context

from greenbutton.storage._partitions import include_name, include_object  # partitions, r0010
from greenbutton.storage._schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    include_name=include_name,
    include_object=include_object(connection.dialect.name),
    render_as_batch=connection.dialect.name == "sqlite",
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
