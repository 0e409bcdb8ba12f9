"""KeyRing: the API keys a caller may present, from SDG_API_KEYS (held in memory) and from the
job database's api_keys table (made by `python -m gateway keys create`). Only the sha256 of a
secret is kept; a presented secret is looked up by its digest. With no key in either place the
API is open, as it always was."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Engine

from gateway import db

KEY_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,48}$")
# A configured secret shorter than this is a password, not a key.
MIN_SECRET_CHARS = 16
SECRET_PREFIX = "sdg_"
# Jobs of a key from SDG_API_KEYS are owned by this prefix plus its name, so rotating its secret
# keeps its jobs.
CONFIGURED_PREFIX = "env:"


class KeyLimits(BaseModel):
    """A key's own limits; an unset one is the gateway's SDG_KEY_* default."""

    model_config = ConfigDict(extra="forbid")

    requests_per_minute: int | None = Field(None, ge=1)
    max_queued_jobs: int | None = Field(None, ge=1)
    max_rows_in_flight: int | None = Field(None, ge=1)
    max_images_in_flight: int | None = Field(None, ge=1)


@dataclass(frozen=True)
class ApiKey:
    key_id: str  # what owns its jobs (the jobs table's `owner`)
    name: str
    limits: KeyLimits
    created_at: str | None = None  # None: configured by SDG_API_KEYS

    @property
    def configured(self) -> bool:
        return self.created_at is None


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_configured(entries: list[str]) -> dict[str, str]:
    """SDG_API_KEYS entries, "name:secret" each, as {name: secret}. Raises ValueError naming the
    entry and what is wrong with it."""
    keys: dict[str, str] = {}
    for i, entry in enumerate(entries):
        name, sep, secret = entry.partition(":")
        if not sep:
            raise ValueError(f"entry {i} is not name:secret")
        if not KEY_NAME.match(name):
            raise ValueError(f"entry {i}: name {name!r} must be 1-48 letters, digits, '_', '.' or '-'")
        if len(secret) < MIN_SECRET_CHARS:
            raise ValueError(f"entry {i} ({name}): the secret must be at least {MIN_SECRET_CHARS} characters")
        if name in keys:
            raise ValueError(f"entry {i}: name {name!r} is given twice")
        if secret in keys.values():
            raise ValueError(f"entry {i} ({name}): its secret is another key's too")
        keys[name] = secret
    return keys


class KeyRing:
    def __init__(self, engine: Engine, configured: dict[str, str]):
        self.engine = engine
        self._configured = {
            digest(secret): ApiKey(CONFIGURED_PREFIX + name, name, KeyLimits()) for name, secret in configured.items()
        }

    def enabled(self) -> bool:
        """Whether callers need a key: one is configured or in the database (read each time, so
        keys made or revoked while the gateway runs count at once)."""
        if self._configured:
            return True
        with self.engine.connect() as conn:
            return conn.execute(sa.select(db.api_keys.c.key_id).limit(1)).first() is not None

    def find(self, secret: str) -> ApiKey | None:
        wanted = digest(secret)
        if (key := self._configured.get(wanted)) is not None:
            return key
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(db.api_keys).where(db.api_keys.c.digest == wanted)).first()
        return _from_row(row) if row is not None else None

    def configured(self) -> list[ApiKey]:
        return list(self._configured.values())

    def stored(self) -> list[ApiKey]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(db.api_keys).order_by(db.api_keys.c.created_at)).all()
        return [_from_row(row) for row in rows]

    def create(self, name: str, limits: KeyLimits, created_at: str) -> tuple[ApiKey, str]:
        """A new key in the database and its secret, which is not kept and cannot be shown again."""
        if not KEY_NAME.match(name):
            raise ValueError(f"name {name!r} must be 1-48 letters, digits, '_', '.' or '-'")
        if any(key.name == name for key in self.stored() + self.configured()):
            raise ValueError(f"name {name!r} is taken by another key")
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey("key_" + secrets.token_hex(8), name, limits, created_at)
        values = {"key_id": key.key_id, "name": name, "digest": digest(secret), "created_at": created_at}
        with self.engine.begin() as conn:
            conn.execute(sa.insert(db.api_keys).values(**values, limits=limits.model_dump(exclude_none=True)))
        return key, secret

    def revoke(self, key_id_or_name: str) -> ApiKey:
        """Deletes a database key, by id or name; its jobs stay, owned by no key that exists."""
        table = db.api_keys
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(table).where(sa.or_(table.c.key_id == key_id_or_name, table.c.name == key_id_or_name))).first()
            if row is None:
                raise LookupError(f"no key in the database has the id or name {key_id_or_name!r}")
            conn.execute(sa.delete(table).where(table.c.key_id == row.key_id))
        return _from_row(row)


def _from_row(row: sa.Row) -> ApiKey:
    return ApiKey(row.key_id, row.name, KeyLimits.model_validate(row.limits), row.created_at)
