"""The job view's shards strip in headless Chromium, for a text job a real gateway spreads over two
addresses of the real tiny-model text service (two replicas to the gateway)."""

from __future__ import annotations

import time

import httpx

from tests.conftest import start_gateway
from tests.ui.test_ui import JOB_TIMEOUT_MS, browser, expect, job_item  # noqa: F401 (fixtures)


def test_a_sharded_jobs_view_shows_a_cell_per_shard_with_its_state_and_replica(browser, text_service, image_service, service_logs, tmp_path):
    second = f"localhost:{text_service.address.rpartition(':')[2]}"
    gateway = start_gateway(service_logs, f"{text_service.address},{second}", image_service.address, tmp_path, SDG_SHARD_ROWS="20")
    page = browser.new_page()
    try:
        deadline = time.monotonic() + 30
        while {a for a, s in httpx.get(f"{gateway.address}/health").json()["services"].items() if s["status"] == "serving"} < {
                text_service.address, second}:
            assert time.monotonic() < deadline, "the gateway never saw both text replicas serving"
            time.sleep(0.1)
        page.goto(f"{gateway.address}/ui")
        body = {"schema": {"name": {"type": "string", "maxLength": 8}}, "num_samples": 100}
        job_id = httpx.post(f"{gateway.address}/generate/text", json=body).json()["job_id"]
        item = job_item(page, job_id)
        item.locator(".job-id").click()
        expect(item.get_by_test_id("job-status")).to_have_text("completed", timeout=JOB_TIMEOUT_MS)
        shards = page.get_by_test_id("job-shards")
        cells = shards.get_by_test_id("shard")
        expect(cells).to_have_count(5)
        expect(shards.locator('[data-state="completed"]')).to_have_count(5)
        expect(shards.get_by_test_id("shards-summary")).to_have_text("Shards: 5 of 5 done, over 2 replicas")
        titles = [cells.nth(i).get_attribute("title") for i in range(5)]
        assert titles[0].startswith("rows shard 0: completed · 20/20 rows · on ") and all("attempt" not in t for t in titles)
        assert {t.rsplit(" on ", 1)[1] for t in titles} == {text_service.address, second}
    finally:
        page.close()
        gateway.stop()
