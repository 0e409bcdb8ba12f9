"""Every SDG_ environment variable a component reads, so that each can warn at start-up about one
that none reads: pydantic-settings ignores names it does not know, and a gateway whose
SDG_TEXT_SERVICE_ADDR (for SDG_TEXT_SERVICE_ADDRS) was dropped calls localhost:50051 instead.
Listed here, not gathered from the settings classes, because the gateway's image has no service
code; a test keeps the list equal to what the settings read."""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping

GATEWAY = frozenset({
    "SDG_API_KEYS", "SDG_CORS_ORIGINS", "SDG_DATABASE_URL", "SDG_FRONTEND_DIR", "SDG_IMAGE_SERVICE_ADDRS",
    "SDG_LOG_FORMAT", "SDG_MAX_ATTEMPTS", "SDG_MAX_CONCURRENT_JOBS", "SDG_MAX_QUEUED_JOBS", "SDG_MAX_RESOLUTION", "SDG_MIN_RESOLUTION",
    "SDG_MODEL_LOAD_WAIT_S", "SDG_OUTPUT_DIR", "SDG_PROBE_TIMEOUT_S", "SDG_PROGRESS_WRITE_INTERVAL_S",
    "SDG_RESUME_INTERRUPTED", "SDG_SERVICE_START_WAIT_S", "SDG_STREAM_TIMEOUT_S",
    "SDG_TEXT_SERVICE_ADDRS", "SDG_METRICS_REQUIRE_KEY", "SDG_KEY_REQUESTS_PER_MINUTE",
    "SDG_KEY_MAX_QUEUED_JOBS", "SDG_KEY_MAX_ROWS_IN_FLIGHT", "SDG_KEY_MAX_IMAGES_IN_FLIGHT", "SDG_GATEWAY_ID",
    "SDG_LEASE_TTL_S", "SDG_SHARD_ROWS", "SDG_SHARD_IMAGES", "SDG_MAX_DATASET_BYTES", "SDG_MAX_DATASET_ROWS",
})  # fmt: skip
TEXT_SERVICE = frozenset({
    "SDG_DEVICE", "SDG_LOG_FORMAT", "SDG_METRICS_PORT", "SDG_TEXT_BATCH_SIZE", "SDG_TEXT_DECODE",
    "SDG_TEXT_FEED_WIDTH", "SDG_TEXT_LISTEN", "SDG_TEXT_MASK_THREADS", "SDG_TEXT_MAX_ROWS",
    "SDG_TEXT_MODEL", "SDG_TEXT_ROW_TIME_LIMIT_S",
})  # fmt: skip
IMAGE_SERVICE = frozenset({
    "SDG_DEVICE", "SDG_IMAGE_BATCH_SIZE", "SDG_IMAGE_COMPILE", "SDG_IMAGE_COMPILE_MODE",
    "SDG_IMAGE_LISTEN", "SDG_IMAGE_MAX_RESOLUTION", "SDG_IMAGE_MIN_RESOLUTION", "SDG_IMAGE_MODEL",
    "SDG_IMAGE_POSTPROCESS_THREADS", "SDG_IMAGE_WARM_UP_FEATURE_REUSE",
    "SDG_IMAGE_WARM_UP_RESOLUTIONS", "SDG_LOG_FORMAT", "SDG_METRICS_PORT",
})  # fmt: skip
# Read by the test suite, not by a component.
TESTS = frozenset({"SDG_TEST_MODEL_CACHE", "SDG_TEST_VALIDITY_ROWS"})
KNOWN = GATEWAY | TEXT_SERVICE | IMAGE_SERVICE | TESTS


def unread_variables(environ: Mapping[str, str]) -> list[str]:
    """Each SDG_ variable set that no component reads, with the known name it most resembles."""
    found = []
    for name in sorted(n for n in environ if n.startswith("SDG_") and n not in KNOWN):
        close = difflib.get_close_matches(name, KNOWN, n=1)
        found.append(f"{name} (did you mean {close[0]}?)" if close else name)
    return found


def warn_about_unread_variables(log: logging.Logger, environ: Mapping[str, str]) -> None:
    """Called by each component's entry point with its environment."""
    for described in unread_variables(environ):
        log.warning("%s is set, but no SDG component reads it: it has no effect", described)
