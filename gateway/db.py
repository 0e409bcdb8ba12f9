"""The job database: SQLite in WAL mode under SDG_OUTPUT_DIR by default, PostgreSQL when
SDG_DATABASE_URL names one. Tables are SQLAlchemy Core; Alembic migrations (gateway/migrations) own
their shape, and every gateway upgrades the database to head before it serves."""

from __future__ import annotations

import logging
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Any constant works; it keeps two gateways starting together from migrating at once.
MIGRATION_LOCK_KEY = 0x5D6_0001

metadata = sa.MetaData()
# SQLite autoincrements only an INTEGER PRIMARY KEY.
EventId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("job_id", sa.String(32), primary_key=True),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("created_at", sa.String(32), nullable=False, index=True),
    sa.Column("owner", sa.String(64), nullable=True, index=True),
    # The gateway running the job, and until when its claim holds without a heartbeat.
    sa.Column("lease_owner", sa.String(64), nullable=True),
    sa.Column("lease_expires_at", sa.Float, nullable=True),
    # Set by a gateway asked to cancel a job that another one runs; that one's heartbeat stops it.
    sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("record", sa.JSON, nullable=False),
)

job_events = sa.Table(
    "job_events",
    metadata,
    sa.Column("id", EventId, primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.String(32), nullable=False, index=True),
    sa.Column("at", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("digest", sa.String(128), nullable=False, unique=True),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("limits", sa.JSON, nullable=False),
)

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("dataset_id", sa.String(32), primary_key=True),
    sa.Column("owner", sa.String(64), nullable=True, index=True),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("format", sa.String(16), nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("columns", sa.JSON, nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False, index=True),
    # The parsed rows, zlib-compressed JSON lines of [file line, row] (gateway/datasets.py).
    sa.Column("data", sa.LargeBinary, nullable=False),
)

# A run's shards (gateway/shards.py): one row per (job, run, kind, table, shard), updated as it runs.
shards = sa.Table(
    "shards",
    metadata,
    sa.Column("job_id", sa.String(32), primary_key=True),
    sa.Column("run", sa.Integer, primary_key=True),  # 0, then one more for each resume
    sa.Column("table_name", sa.String(64), primary_key=True),  # a tables job's table; "" otherwise
    sa.Column("shard", sa.Integer, primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("kind", sa.String(8), primary_key=True),  # rows or images
    sa.Column("first", sa.Integer, nullable=False),  # its first position (row or image index) in the run
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("done", sa.Integer, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("replica", sa.String(256), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("lease_owner", sa.String(64), nullable=True),
    sa.Column("lease_expires_at", sa.Float, nullable=True),
    sa.Column("updated_at", sa.Float, nullable=False),
)


def database_url(url: str, output_dir: Path) -> str:
    """SDG_DATABASE_URL, or the embedded SQLite file beside the outputs."""
    if url:
        return url
    output_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(output_dir / 'sdg.db').resolve()}"


def connect(url: str) -> Engine:
    """An engine with the settings each backend needs for several writers."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling defers BEGIN; issue it ourselves so that a claim's
        # read and write hold one write lock (BEGIN IMMEDIATE).
        sa.event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None  # let the "begin" listener issue BEGIN
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def open_database(url: str, output_dir: Path) -> Engine:
    """The job database SDG_DATABASE_URL names (or the SQLite file), migrated to the newest schema."""
    engine = connect(database_url(url, output_dir))
    upgrade(engine)
    return engine


def upgrade(engine: Engine) -> None:
    """Brings the database to the newest migration, one gateway at a time."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
