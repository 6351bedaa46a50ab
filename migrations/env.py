"""Alembic environment, run by Flask-Migrate inside the labeler app context."""

import logging

from alembic import context
from flask import current_app

config = context.config
# No fileConfig(): the server and CLI apply migrations at start-up and own the logging set-up.
logger = logging.getLogger("alembic.env")

target_db = current_app.extensions["migrate"].db
engine = target_db.engine
config.set_main_option(
    "sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%")
)


def run_migrations_offline() -> None:
    """Emit SQL to stdout (``labeler db upgrade --sql``) without a database connection."""
    context.configure(url=config.get_main_option("sqlalchemy.url"),
                      target_metadata=target_db.metadata, literal_binds=True,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    def process_revision_directives(context, revision, directives):
        # `db migrate` with no model change makes no empty revision.
        if getattr(config.cmd_opts, "autogenerate", False):
            if directives[0].upgrade_ops.is_empty():
                directives[:] = []
                logger.info("No changes in schema detected.")

    conf_args = dict(current_app.extensions["migrate"].configure_args)
    conf_args.setdefault("process_revision_directives", process_revision_directives)
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # SQLite's batch migrations rebuild a table: copy, drop the old one, rename. With
            # foreign keys enforced (labeler.database turns them on for every connection),
            # dropping the old table cascades to every row that refers to it: rebuilding
            # `image` deleted every annotation, rebuilding `annotation` every tag of it. So
            # they are off while migrating (a no-op inside a transaction, hence before it)
            # and the result is checked before it is committed.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            context.configure(connection=connection, target_metadata=target_db.metadata,
                              **conf_args)
            with context.begin_transaction():
                context.run_migrations()
                if sqlite:
                    _check_foreign_keys(connection)
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def _check_foreign_keys(connection) -> None:
    """Refuse to commit a migration that left a row pointing at a row that is not there."""
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(
            f"The upgrade left {len(broken)} rows referring to missing rows (first: table "
            f"{broken[0][0]!r}, row {broken[0][1]}, refers to {broken[0][2]!r}); nothing was "
            "changed. Restore from a backup or report this with the table names.")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
