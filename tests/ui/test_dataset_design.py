"""The schema builder's dataset design (issue 16): how each field is made (model, sampler,
expression), unique and order rules, `{field}` references in descriptions, and the gateway's
errors shown by the row they name. Real gateway and tiny-model services, headless Chromium."""

from __future__ import annotations

import copy
import json

import httpx
from tests.ui.test_ui import JOB_TIMEOUT_MS, browser, expect, job_item, page, submitted  # noqa: F401 (fixtures)


def design(row, made: str, sampler: str | None = None, **options: str) -> None:
    row.get_by_test_id("field-made").select_option(made)
    if sampler:
        row.get_by_test_id("field-sampler").select_option(sampler)
    for key, value in options.items():
        row.get_by_test_id(f"sampler-{key.replace('_', '-')}").fill(value)


def test_a_schema_designed_in_the_builder_sends_its_x_sdg_objects_and_the_job_completes(page, gateway):
    sent = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)
    form = page.get_by_test_id("form-text")
    rows = form.get_by_test_id("schema-field")  # customer_name, age, email, plan, signup_date
    name, age, email, plan = rows.nth(0), rows.nth(1), rows.nth(2), rows.nth(3)

    design(name, "sampled", provider="nme")  # faker is a string's first sampler; the typo is the gateway's to find
    expect(name.get_by_test_id("sampler-provider")).to_be_visible()  # choosing "sampled" unfolds the options
    design(age, "sampled", "gaussian", mean="40", stddev="0")
    expect(age.get_by_test_id("field-design-problems")).to_have_text("std. deviation must be above 0")
    design(plan, "sampled", "category", values="free, pro, enterprise", weights="0.6, 0.3")
    expect(plan.get_by_test_id("field-design-problems")).to_have_text("2 weights for 3 values: give one per value")
    page.get_by_test_id("submit-text").click()
    expect(page.get_by_test_id("text-error")).to_have_text("schema.age: std. deviation must be above 0")
    age.get_by_test_id("sampler-stddev").fill("12")
    plan.get_by_test_id("sampler-weights").fill("0.6, 0.3, 0.1")
    expect(age.get_by_test_id("field-design-problems")).to_be_hidden()
    expect(plan.get_by_test_id("field-design-problems")).to_be_hidden()
    age.get_by_test_id("field-type").select_option("date")  # the sampler stays, flagged, until the type fits again
    expect(age.get_by_test_id("field-design-problems")).to_have_text("gaussian does not sample date fields; pick one of datetime, category, faker")
    age.get_by_test_id("field-type").select_option("int")
    expect(age.get_by_test_id("field-design-problems")).to_be_hidden()
    assert sent == []  # checked in the page, before any request

    email.get_by_test_id("field-options-toggle").click()
    email.get_by_test_id("field-unique").check()

    # A conditioned field: "{" offers the other fields, a chip finishes the reference.
    page.get_by_test_id("text-add-field").click()
    bio = rows.last
    bio.get_by_test_id("field-name").fill("bio")
    bio.get_by_test_id("field-options-toggle").click()
    description = bio.get_by_test_id("field-description")
    description.fill("a short bio of ")
    description.press("End")
    description.press("{")
    chips = bio.get_by_test_id("description-chip")
    expect(chips).to_have_text(["{customer_name}", "{age}", "{email}", "{plan}", "{signup_date}"])
    chips.filter(has_text="{customer_name}").click()
    expect(description).to_have_value("a short bio of {customer_name}")
    description.press("End")
    description.press_sequentially(", aged {age}, on the {plann} plan")
    expect(bio.get_by_test_id("description-unknown")).to_have_text("{plann} names no field (write {{ for a literal brace).")
    description.fill("a short bio of {customer_name}, aged {age}, on the {plan} plan")
    expect(bio.get_by_test_id("description-unknown")).to_have_count(0)
    expect(bio.get_by_test_id("description-after")).to_have_text(
        "Written after customer_name, age, plan, with their values in its prompt."
    )

    # Raw JSON and back keeps every choice.
    page.get_by_test_id("text-raw-toggle").check()
    raw = json.loads(page.get_by_test_id("text-raw").input_value())
    assert raw["properties"]["age"]["x-sdg"] == {"gaussian": {"mean": 40, "stddev": 12}}
    page.get_by_test_id("text-raw-toggle").uncheck()
    expect(rows).to_have_count(6)
    assert rows.nth(3).get_by_test_id("field-made").input_value() == "sampled"

    page.get_by_test_id("text-num-samples").fill("4")
    page.get_by_test_id("text-seed").fill("5")
    request = submitted(page, "text")
    reply = request.response()
    assert reply.status == 400, reply.text()
    # The gateway's 400 names /properties/customer_name/x-sdg/faker/provider: shown by that row.
    assert "/properties/customer_name/x-sdg/faker/provider" in reply.json()["detail"]
    error = rows.nth(0).get_by_test_id("field-server-error")
    expect(error).to_contain_text("'nme' is not a Faker provider")
    expect(rows.nth(0).get_by_test_id("sampler-provider")).to_have_class("invalid")
    rows.nth(0).get_by_test_id("sampler-provider").fill("name")
    expect(error).to_be_hidden()  # editing the row retires its error

    request = submitted(page, "text")
    properties = request.post_data_json["schema"]["properties"]
    assert properties["customer_name"]["x-sdg"] == {"faker": {"provider": "name"}}
    assert properties["age"] == {"type": "integer", "minimum": 18, "maximum": 90, "x-sdg": {"gaussian": {"mean": 40, "stddev": 12}}}
    assert properties["plan"]["x-sdg"] == {"category": {"values": ["free", "pro", "enterprise"], "weights": [0.6, 0.3, 0.1]}}
    assert properties["email"] == {"type": "string", "format": "email", "x-sdg": {"unique": True}}
    assert properties["bio"] == {"type": "string", "description": "a short bio of {customer_name}, aged {age}, on the {plan} plan"}
    reply = request.response()
    assert reply.status == 202, reply.text()
    job_id = reply.json()["job_id"]
    expect(job_item(page, job_id).get_by_test_id("job-status")).to_have_text("completed", timeout=JOB_TIMEOUT_MS)

    stored = httpx.get(f"{gateway.address}/status/{job_id}").json()["request"]["schema"]["properties"]
    assert stored["age"]["x-sdg"] == {"gaussian": {"mean": 40, "stddev": 12}}
    assert stored["plan"]["x-sdg"]["category"]["weights"] == [0.6, 0.3, 0.1]
    table = page.get_by_test_id("job-view").get_by_test_id("preview-table")
    expect(table.get_by_test_id("preview-row")).to_have_count(4)
    column = {name: i + 1 for i, name in enumerate(table.locator("thead th").all_inner_texts())}
    for age_text in table.locator(f"tbody tr td:nth-child({column['age']})").all_inner_texts():
        assert 18 <= int(age_text) <= 90
    for plan_text in table.locator(f"tbody tr td:nth-child({column['plan']})").all_inner_texts():
        assert plan_text in {"free", "pro", "enterprise"}


# The request shape: every kind of x-sdg the builder has a control for.
DESIGNED = {
    "id": {"type": "integer", "x-sdg": {"sequence": {"start": 1, "step": 1}}},
    "tier": {"type": "string", "x-sdg": {"category": {"values": ["free", "pro", "enterprise"], "weights": [0.6, 0.3, 0.1]}}},
    "age": {"type": "integer", "minimum": 18, "maximum": 90, "x-sdg": {"gaussian": {"mean": 40, "stddev": 12}}},
    "country": {"type": "string", "x-sdg": {"category": {"values": ["NL", "DE", "JP"]}}},
    "name": {"type": "string", "x-sdg": {"faker": {"provider": "name", "locale_from": "country", "locales": {"NL": "nl_NL", "DE": "de_DE", "JP": "ja_JP"}}}},
    "signup": {"type": "string", "format": "date", "x-sdg": {"datetime": {"start": "2020-01-01", "end": "2024-12-31"}}},
    "renewal": {"type": "string", "format": "date", "x-sdg": {"greater_than": "signup"}},
    "email": {"type": "string", "format": "email", "x-sdg": {"unique": True}},
    "bio": {"type": "string", "description": "a short bio of {name}, a {age}-year-old {tier} customer from {country}"},
    "label": {"type": "string", "x-sdg": {"expression": "name ~ ' (' ~ tier ~ ')'"}},
    "visits": {"type": "integer", "minimum": 0, "x-sdg": {"poisson": {"mean": 3}, "unique": True}},
}


def test_an_imported_schema_with_x_sdg_shows_in_the_builder_and_is_sent_back_unchanged(page):
    form = page.get_by_test_id("form-text")
    page.get_by_test_id("text-import-open").click()
    page.get_by_test_id("text-import-text").fill(json.dumps(DESIGNED, indent=2))
    page.get_by_test_id("text-import-apply").click()
    expect(page.get_by_test_id("text-import-summary")).to_contain_text("11 of its fields in the builder, 0 kept as raw JSON")
    rows = form.get_by_test_id("schema-field")
    row = {name: rows.nth(i) for i, name in enumerate(DESIGNED)}
    made = {name: r.get_by_test_id("field-made").input_value() for name, r in row.items()}
    assert made == {**dict.fromkeys(DESIGNED, "sampled"), "renewal": "model", "email": "model", "bio": "model", "label": "computed"}

    for r in row.values():
        r.get_by_test_id("field-options-toggle").click()
    assert row["tier"].get_by_test_id("sampler-weights").input_value() == "0.6, 0.3, 0.1"
    assert row["age"].get_by_test_id("field-sampler").input_value() == "gaussian"
    assert row["age"].get_by_test_id("sampler-stddev").input_value() == "12"
    assert row["name"].get_by_test_id("sampler-locale-from").input_value() == "country"
    assert row["name"].get_by_test_id("sampler-locales").input_value() == "NL=nl_NL, DE=de_DE, JP=ja_JP"
    assert row["signup"].get_by_test_id("sampler-end").input_value() == "2024-12-31"
    assert row["renewal"].get_by_test_id("field-order").input_value() == "greater_than"
    assert row["renewal"].get_by_test_id("field-order-field").input_value() == "signup"
    expect(row["email"].get_by_test_id("field-unique")).to_be_checked()
    expect(row["visits"].get_by_test_id("field-unique")).to_be_checked()
    assert row["label"].get_by_test_id("field-expression").input_value() == "name ~ ' (' ~ tier ~ ')'"
    expect(row["bio"].get_by_test_id("description-after")).to_have_text(
        "Written after name, age, tier, country, with their values in its prompt."
    )
    for r in row.values():
        expect(r.get_by_test_id("field-design-problems")).to_be_hidden()

    page.get_by_test_id("text-num-samples").fill("2")
    assert submitted(page, "text").post_data_json["schema"] == DESIGNED
    # An edited option changes that option only.
    row["age"].get_by_test_id("sampler-stddev").fill("9.5")
    edited = copy.deepcopy(DESIGNED)
    edited["age"]["x-sdg"]["gaussian"]["stddev"] = 9.5
    assert submitted(page, "text").post_data_json["schema"] == edited


def test_the_tables_view_sends_named_schemas_with_a_foreign_key_and_a_per_parent_count(page):
    page.get_by_test_id("tab-tables").click()
    tables = page.get_by_test_id("table")  # the example: customers, and orders of each customer
    expect(tables).to_have_count(2)
    orders = tables.nth(1)
    expect(orders.get_by_test_id("table-rows")).to_be_hidden()  # a child's count is per parent
    assert orders.get_by_test_id("table-parent").input_value() == "customers.id"
    tables.nth(0).get_by_test_id("table-rows").fill("5")
    orders.get_by_test_id("table-per-parent").fill("2")

    page.get_by_test_id("tables-add").click()
    items = tables.nth(2)
    items.get_by_test_id("table-name").fill("order_items")
    items.get_by_test_id("tables-t2-add-field").click()
    items.get_by_test_id("field-name").fill("sku")
    items.get_by_test_id("table-parent").select_option("orders.id")
    items.get_by_test_id("table-key-field").fill("order_id")
    items.get_by_test_id("table-per-parent-kind").select_option("fixed")
    items.get_by_test_id("table-per-parent").fill("3")

    request = submitted(page, "tables")
    body = request.post_data_json
    sequence = {"type": "integer", "x-sdg": {"sequence": {"start": 1}}}
    assert body["tables"] == {
        "customers": {
            "schema": {"type": "object", "properties": {"id": sequence, "name": {"type": "string", "x-sdg": {"faker": {"provider": "name"}}}},
                       "required": ["id", "name"]},
            "num_samples": 5,
        },
        "orders": {
            "schema": {"type": "object", "properties": {
                "customer_id": {"type": "integer", "x-sdg": {"foreign_key": "customers.id"}},
                "id": sequence, "total": {"type": "number", "minimum": 1, "maximum": 500}},
                "required": ["customer_id", "id", "total"]},
            "per_parent": {"poisson": {"mean": 2}},
        },
        "order_items": {
            "schema": {"type": "object", "properties": {
                "order_id": {"type": "integer", "x-sdg": {"foreign_key": "orders.id"}}, "sku": {"type": "string"}},
                "required": ["order_id", "sku"]},
            "per_parent": 3,
        },
    }
    assert body["output_format"] == "json"
    reply = request.response()
    assert reply.status == 202, reply.text()
    job_id = reply.json()["job_id"]
    expect(job_item(page, job_id).get_by_test_id("job-status")).to_have_text("completed", timeout=JOB_TIMEOUT_MS)
    files = page.get_by_test_id("job-view").get_by_test_id("result-files")
    for name in ("customers.json", "orders.json", "order_items.json"):
        expect(files).to_contain_text(name)
