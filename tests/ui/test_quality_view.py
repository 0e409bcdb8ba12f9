"""The job view's Quality section in headless Chromium, for a finished text job on the real
gateway and tiny-model services: plots drawn as inline SVG, with their p-values beside them."""

from __future__ import annotations

import re

import httpx

from tests.ui.test_ui import JOB_TIMEOUT_MS, browser, expect, job_item, page  # noqa: F401 (fixtures)

SCHEMA = {
    "tier": {"type": "string", "x-sdg": {"category": {"values": ["free", "pro"], "weights": [0.7, 0.3]}}},
    "age": {"type": "integer", "minimum": 18, "maximum": 90, "x-sdg": {"gaussian": {"mean": 40, "stddev": 12}}},
    "note": {"type": "string", "maxLength": 8},
}


def test_a_finished_jobs_quality_section_plots_its_fields_with_their_p_values(page, gateway):
    body = {"schema": SCHEMA, "num_samples": 200, "seed": 3}
    job_id = httpx.post(f"{gateway.address}/generate/text", json=body).json()["job_id"]
    item = job_item(page, job_id)
    expect(item.get_by_test_id("job-status")).to_have_text("completed", timeout=JOB_TIMEOUT_MS)
    item.locator(".job-id").click()
    quality = page.get_by_test_id("result-quality")
    expect(quality.get_by_test_id("quality-fields")).to_be_visible()
    # tier and age: requested against observed; note: its lengths.
    plots = quality.locator('svg[data-testid="quality-plot"]')
    expect(plots).to_have_count(3)
    assert plots.first.locator("rect").count() == 2  # free and pro
    expect(plots.nth(1).locator("polyline")).to_have_count(1)  # the requested pmf over the observed bars
    p_values = quality.get_by_test_id("quality-p-value")
    expect(p_values).to_have_count(2)
    for text in p_values.all_inner_texts():
        assert re.fullmatch(r"p = \d\.\d{4}", text) and float(text[4:]) >= 0.01, text
    expect(quality.get_by_test_id("quality-fields")).to_contain_text("sampled (gaussian)")
    expect(quality).to_contain_text("repeated in")


def test_a_tables_jobs_quality_section_has_one_part_per_table(page, gateway):
    sequence = {"type": "integer", "x-sdg": {"sequence": {"start": 1}}}
    body = {"tables": {
        "customers": {"schema": {"id": sequence, "tier": SCHEMA["tier"]}, "num_samples": 20},
        "orders": {"schema": {"id": sequence, "customer_id": {"type": "integer", "x-sdg": {"foreign_key": "customers.id"}},
                              "note": SCHEMA["note"]}, "per_parent": {"fixed": {"count": 1}}}}}
    response = httpx.post(f"{gateway.address}/generate/tables", json=body)
    assert response.status_code == 202, response.text
    item = job_item(page, response.json()["job_id"])
    expect(item.get_by_test_id("job-status")).to_have_text("completed", timeout=JOB_TIMEOUT_MS)
    item.locator(".job-id").click()
    parts = page.get_by_test_id("result-quality").get_by_test_id("quality-table")
    expect(parts).to_have_count(2)
    expect(parts.first.locator("h4")).to_have_text("customers")
    expect(parts.nth(1)).to_contain_text("given")  # its keys came from the gateway
    expect(parts.first.locator('svg[data-testid="quality-plot"]')).to_have_count(1)
