"""Alembic's entry point: runs migrations on the connection gateway.db.upgrade hands it."""

from alembic import context

from gateway.db import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
