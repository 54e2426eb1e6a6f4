"""Alembic environment: migrations run on the connection ``api.storage.db.migrate`` hands over."""

from alembic import context

from api.storage.models import SQLModel

target_metadata = SQLModel.metadata


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through `api.storage.db.migrate` (jiuzhu serve does so on start)")
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


run()
