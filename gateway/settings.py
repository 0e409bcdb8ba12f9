"""GatewaySettings: the one place the gateway reads its environment. Created once in __main__ (or by
a test) and passed into create_app; no other module reads os.environ."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from gateway.jobs import Leases
from gateway.keys import parse_configured
from sdg.limits import MAX_RESOLUTION, MIN_RESOLUTION, RESOLUTION_STEP
from sdg.logs import LogFormat

# The frontend is a sibling of this package in the repository; containers may place it elsewhere.
DEFAULT_FRONTEND_DIR = Path(__file__).resolve().parent.parent / "frontend"

# A service address with this prefix is a DNS name for all its replicas (gateway/clients.py).
DNS_PREFIX = "dns:///"

# Comma-separated lists ("a:1,b:2") rather than pydantic-settings' JSON lists, as the docs promise.
CommaList = Annotated[list[str], NoDecode]


def comma_parts(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    text_service_addrs: CommaList = Field(["localhost:50051"], validation_alias="SDG_TEXT_SERVICE_ADDRS")
    image_service_addrs: CommaList = Field(["localhost:50052"], validation_alias="SDG_IMAGE_SERVICE_ADDRS")
    output_dir: Path = Field(Path("generated_data"), validation_alias="SDG_OUTPUT_DIR")
    # The job database; unset, an SQLite file in the output folder (gateway/db.py).
    database_url: str = Field("", validation_alias="SDG_DATABASE_URL")
    # Origins other than the gateway's own that browsers may call it from; unset, same-origin only.
    cors_origins: CommaList = Field([], validation_alias="SDG_CORS_ORIGINS")
    host: str = Field("0.0.0.0", validation_alias="UVICORN_HOST")
    port: int = Field(8000, ge=0, le=65535, validation_alias="UVICORN_PORT")
    frontend_dir: Path = Field(DEFAULT_FRONTEND_DIR, validation_alias="SDG_FRONTEND_DIR")

    # Jobs beyond this many per model service wait as "queued" (gateway/slots.py).
    max_concurrent_jobs: int = Field(2, ge=1, validation_alias="SDG_MAX_CONCURRENT_JOBS")
    max_queued_jobs: int = Field(100, ge=1, validation_alias="SDG_MAX_QUEUED_JOBS")
    min_resolution: int = Field(MIN_RESOLUTION, ge=RESOLUTION_STEP, validation_alias="SDG_MIN_RESOLUTION")
    max_resolution: int = Field(MAX_RESOLUTION, ge=RESOLUTION_STEP, validation_alias="SDG_MAX_RESOLUTION")
    # A stream that sends nothing for this long is treated as a hung service and the job fails.
    # Services send an event per batch or denoising step, so silence this long is never normal.
    stream_inactivity_timeout_s: float = Field(300.0, gt=0, validation_alias="SDG_STREAM_TIMEOUT_S")
    # Deadline for the short calls (health, model info) that tell whether a service is there at all.
    probe_timeout_s: float = Field(3.0, gt=0, validation_alias="SDG_PROBE_TIMEOUT_S")
    # A job starting while a service does not answer waits this long for it before failing: the
    # services may be starting beside the gateway (make demo, docker compose, a restart).
    service_start_wait_s: float = Field(60.0, ge=0, validation_alias="SDG_SERVICE_START_WAIT_S")
    # A job starting while a service is still loading its model (a first download, a compiled
    # warm-up) waits this long for it before failing.
    model_load_wait_s: float = Field(1800.0, ge=0, validation_alias="SDG_MODEL_LOAD_WAIT_S")
    # Jobs a gateway shutdown or crash stopped part-way are resumed when the gateway starts again
    # (as POST /jobs/{id}/resume would). Off: they stay failed, resumable by hand. On, a job that
    # two such resumes in a row left with nothing more done is left for a person (runner.stuck).
    resume_interrupted: bool = Field(True, validation_alias="SDG_RESUME_INTERRUPTED")
    # A job whose replica goes away mid-stream is resumed at once on another (gateway/failover.py),
    # up to this many attempts in a row; then it fails with the last loss.
    max_attempts: int = Field(3, ge=1, validation_alias="SDG_MAX_ATTEMPTS")
    # Job records are written on every state change but at most this often for progress alone.
    progress_write_interval_s: float = Field(1.0, ge=0, validation_alias="SDG_PROGRESS_WRITE_INTERVAL_S")
    log_format: LogFormat = Field("text", validation_alias="SDG_LOG_FORMAT")
    # A job lacking more rows than this spreads them, in shards this size, over every serving text
    # replica at once (gateway/shards.py).
    shard_rows: int = Field(1024, ge=1, validation_alias="SDG_SHARD_ROWS")
    # ...and one lacking more images than this, in shards this size over the image replicas.
    shard_images: int = Field(16, ge=1, validation_alias="SDG_SHARD_IMAGES")
    # Gateways sharing a database tell their job leases apart by this; unset, host name and port,
    # which a restarted gateway keeps, so it takes back its own jobs at once.
    gateway_id: str = Field("", max_length=64, validation_alias="SDG_GATEWAY_ID")
    # A gateway that has not renewed its leases for this long is taken for dead, and any other
    # gateway on the database takes over its unfinished jobs. It renews them three times a lease.
    lease_ttl_s: float = Field(30.0, gt=0, validation_alias="SDG_LEASE_TTL_S")

    # Uploads to POST /datasets past this size are refused (413), past this many rows too (400).
    max_dataset_bytes: int = Field(64 * 2**20, ge=1, validation_alias="SDG_MAX_DATASET_BYTES")
    max_dataset_rows: int = Field(100_000, ge=1, validation_alias="SDG_MAX_DATASET_ROWS")

    # API keys, "name:secret,name:secret" (gateway/keys.py); more live in the job database. With
    # none in either, every endpoint is open.
    api_keys: Annotated[dict[str, str], NoDecode] = Field({}, validation_alias="SDG_API_KEYS", repr=False)
    metrics_require_key: bool = Field(False, validation_alias="SDG_METRICS_REQUIRE_KEY")
    # Each key's limits unless its own `limits` say otherwise (gateway/admission.py).
    key_requests_per_minute: int = Field(600, ge=1, validation_alias="SDG_KEY_REQUESTS_PER_MINUTE")
    key_max_queued_jobs: int = Field(20, ge=1, validation_alias="SDG_KEY_MAX_QUEUED_JOBS")
    key_max_rows_in_flight: int = Field(1_000_000, ge=1, validation_alias="SDG_KEY_MAX_ROWS_IN_FLIGHT")
    key_max_images_in_flight: int = Field(10_000, ge=1, validation_alias="SDG_KEY_MAX_IMAGES_IN_FLIGHT")

    @field_validator("text_service_addrs", "image_service_addrs", "cors_origins", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return comma_parts(value)
        return value

    @field_validator("api_keys", mode="before")
    @classmethod
    def _parse_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_configured(comma_parts(value))
        return value

    @property
    def leases(self) -> Leases:
        return Leases(self.gateway_id or f"{socket.gethostname()}:{self.port}", self.lease_ttl_s)

    @field_validator("text_service_addrs", "image_service_addrs")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("must name at least one entry")
        for address in value:
            if address.startswith(DNS_PREFIX) and not address.rpartition(":")[2].isdigit():
                raise ValueError(f"{address!r} has no port: a DNS name is {DNS_PREFIX}host:port")
        return value

    @model_validator(mode="after")
    def _resolution_bounds(self) -> GatewaySettings:
        if self.min_resolution > self.max_resolution:
            raise ValueError(f"SDG_MIN_RESOLUTION {self.min_resolution} is above SDG_MAX_RESOLUTION {self.max_resolution}")
        return self
