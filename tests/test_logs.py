"""sdg.logs: JSON lines carry the fields of the context a line was logged in, and only those."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import pytest

from sdg.logs import ContextFilter, JsonFormatter, context_with, log_context


@pytest.fixture
def json_log():
    """A logger whose lines land, as JSON objects, in the returned list."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    records: list[dict] = []

    def read() -> list[dict]:
        records[:] = [json.loads(line) for line in stream.getvalue().splitlines()]
        return records

    yield logger, read
    logger.removeHandler(handler)


def test_lines_inside_log_context_carry_its_fields_and_lines_after_it_do_not(json_log):
    logger, read = json_log
    with log_context(job_id="job_0123456789ab"):
        with log_context(shard=2):
            logger.info("inner")
        logger.info("outer")
    logger.info("after")
    inner, outer, after = read()
    assert inner["job_id"] == "job_0123456789ab" and inner["shard"] == "2"
    assert outer["job_id"] == "job_0123456789ab" and "shard" not in outer
    assert "job_id" not in after and "shard" not in after
    assert (inner["level"], inner["logger"], inner["message"]) == ("INFO", "tests.logs", "inner")
    assert inner["time"].endswith("Z")


def test_a_task_started_with_context_with_logs_its_job_and_its_starter_does_not(json_log):
    logger, read = json_log

    async def main() -> None:
        await asyncio.create_task(asyncio.to_thread(logger.info, "in the task"), context=context_with(job_id="job_a"))
        logger.info("in main")

    asyncio.run(main())
    task_line, main_line = read()
    assert task_line["job_id"] == "job_a"
    assert "job_id" not in main_line


def test_an_exception_is_one_field_of_the_same_line(json_log):
    logger, read = json_log
    try:
        raise ValueError("bad value")
    except ValueError:
        logger.exception("it failed")
    (line,) = read()
    assert line["message"] == "it failed"
    assert "ValueError: bad value" in line["exception"]
