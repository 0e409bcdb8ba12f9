"""How every component logs (SDG_LOG_FORMAT): text lines, or JSON lines with time, level, logger,
message and the job and shard a line belongs to, set by log_context and carried by contextvars
(an asyncio task keeps the context it was started in)."""

from __future__ import annotations

import contextvars
import importlib
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Literal

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")

_fields: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("sdg_log_fields", default={})


def _with(job_id: str | None, shard: str | int | None) -> dict[str, str]:
    fields = dict(_fields.get())
    if job_id is not None:
        fields["job_id"] = job_id
    if shard is not None:
        fields["shard"] = str(shard)
    return fields


@contextmanager
def log_context(job_id: str | None = None, shard: str | int | None = None) -> Iterator[None]:
    """Lines logged inside the block (and in tasks started there) carry these fields."""
    token = _fields.set(_with(job_id, shard))
    try:
        yield
    finally:
        _fields.reset(token)


def context_with(job_id: str | None = None, shard: str | int | None = None) -> contextvars.Context:
    """A copy of the current context with these fields set: for asyncio.create_task(context=...),
    whose whole task then logs them."""
    context = contextvars.copy_context()
    context.run(_fields.set, _with(job_id, shard))
    return context


class ContextFilter(logging.Filter):
    """Puts the log_context fields on each record, read in the thread and task that logged it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.sdg_fields = _fields.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "sdg_fields", {}),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(log_format: LogFormat, text_format: str, level: int = logging.INFO) -> None:
    """The root handler of a component's process, on stderr; `text_format` is its text layout."""
    handler = logging.StreamHandler()
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(text_format))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    logging.captureWarnings(True)  # a warning is a line in the same format, not raw stderr


def adopt_library_logs(*libraries: str) -> None:
    """Sends the lines of Hugging Face libraries ("transformers", "diffusers"), which log through
    a handler of their own, through the root's instead, and drops their progress bars. Called
    before they are imported elsewhere: they log while importing."""
    for library in libraries:
        hf_logging = importlib.import_module(f"{library}.utils.logging")
        hf_logging.disable_default_handler()
        hf_logging.enable_propagation()
        hf_logging.disable_progress_bar()
