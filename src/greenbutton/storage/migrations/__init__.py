"""Alembic migrations, shipped in the package and run by :meth:`Store.open` (never by hand)."""
