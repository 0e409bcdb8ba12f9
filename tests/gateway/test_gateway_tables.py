"""Related tables through the real gateway and tiny-model text service: parents first, every
foreign key resolves, and per-parent counts follow the requested distribution."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from scipy import stats

from tests.conftest import wait_for_job

SEQUENCE = {"type": "integer", "x-sdg": {"sequence": {"start": 1}}}
SHOP = {
    "tables": {
        "order_items": {
            "schema": {"order_id": {"type": "integer", "x-sdg": {"foreign_key": "orders.id"}},
                       "product": {"type": "string", "maxLength": 12}, "quantity": {"type": "integer", "minimum": 1, "maximum": 9}},
            "per_parent": {"uniform": {"min": 1, "max": 3}},
        },
        "customers": {"schema": {"id": SEQUENCE, "name": {"type": "string", "maxLength": 12}}, "num_samples": 1000},
        "orders": {
            "schema": {"id": SEQUENCE, "customer_id": {"type": "integer", "x-sdg": {"foreign_key": "customers.id"}},
                       "total": {"type": "number", "minimum": 0, "maximum": 500}},
            "per_parent": {"poisson": {"mean": 3}},
        },
    },
    "output_format": "jsonl",
    "seed": 7,
}


def rows_of(folder: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (folder / f"{name}.jsonl").read_text().splitlines()]


def test_customers_orders_and_items_hold_every_foreign_key_and_their_per_parent_counts(api):
    response = api.post("/generate/tables", json=SHOP)
    assert response.status_code == 202, response.text
    status = wait_for_job(api, response.json()["job_id"], timeout=900)
    assert status["status"] == "completed" and not status["partial"], status
    folder = Path(status["output_path"])
    assert {"customers.jsonl", "orders.jsonl", "order_items.jsonl", "manifest.json"} <= set(status["files"])
    customers, orders, items = rows_of(folder, "customers"), rows_of(folder, "orders"), rows_of(folder, "order_items")

    assert sorted(c["id"] for c in customers) == list(range(1, 1001))
    assert sorted(o["id"] for o in orders) == list(range(1, len(orders) + 1))
    assert {o["customer_id"] for o in orders} <= {c["id"] for c in customers}
    assert {i["order_id"] for i in items} <= {o["id"] for o in orders}

    # Orders per customer: Poisson(3), tested over the counts 0..7 and 8 or more.
    per_customer = Counter(o["customer_id"] for o in orders)
    counts = Counter(per_customer.get(c["id"], 0) for c in customers)
    observed = [counts[k] for k in range(8)] + [sum(n for k, n in counts.items() if k >= 8)]
    pmf = [stats.poisson.pmf(k, 3) for k in range(8)]
    expected = [1000 * p for p in pmf] + [1000 * (1 - sum(pmf))]
    assert stats.chisquare(observed, expected).pvalue > 0.01
    # Items per order: uniform 1..3, exactly within its bounds.
    per_order = Counter(i["order_id"] for i in items)
    assert set(per_order.values()) <= {1, 2, 3} and len(per_order) == len(orders)

    # One quality report per table, over the rows its file holds.
    assert "quality.json" in status["files"]
    quality = json.loads((folder / "quality.json").read_text())["tables"]
    assert list(quality) == ["customers", "orders", "order_items"]
    assert [quality[t]["rows"] for t in quality] == [len(customers), len(orders), len(items)]
    assert quality["orders"]["fields"]["customer_id"]["source"] == "given" and quality["orders"]["fields"]["id"]["distinct_share"] == 1.0
    assert quality["customers"]["fields"]["name"]["source"] == "model" and quality["customers"]["fields"]["name"]["lengths"]["max"] <= 12

    manifest = json.loads((folder / "manifest.json").read_text())
    assert [name for name in manifest["tables"]] == ["customers", "orders", "order_items"]  # parents first
    assert manifest["tables"]["orders"]["rows"] == len(orders) == manifest["tables"]["orders"]["planned"]
    assert manifest["referential_integrity"]["share"] == 1.0
    keys = manifest["referential_integrity"]["foreign_keys"]
    assert keys["orders.customer_id"]["resolved"] == len(orders)
    assert keys["orders.customer_id"]["per_parent"]["parents"] == 1000
    assert manifest["counts"]["generated"] == 1000 + len(orders) + len(items)


@pytest.mark.parametrize("tables, field, reason", [
    ({"a": {"schema": {"id": SEQUENCE, "b_id": {"type": "integer", "x-sdg": {"foreign_key": "b.id"}}}},
      "b": {"schema": {"id": SEQUENCE, "a_id": {"type": "integer", "x-sdg": {"foreign_key": "a.id"}}}}},
     "tables", "cycle: a -> b -> a"),
    ({"a": {"schema": {"id": SEQUENCE}, "num_samples": 3},
      "b": {"schema": {"a_id": {"type": "integer", "x-sdg": {"foreign_key": "a.nope"}}}}},
     "tables.b.schema.a_id.x-sdg.foreign_key", "names no field of another table"),
    ({"a": {"schema": {"id": "int"}, "num_samples": 3},
      "b": {"schema": {"a_id": {"type": "integer", "x-sdg": {"foreign_key": "a.id"}}}}},
     "tables.b.schema.a_id.x-sdg.foreign_key", "must be unique to be referenced"),
    ({"a": {"schema": {"id": SEQUENCE}, "num_samples": 3},
      "b": {"schema": {"a_id": {"type": "integer", "x-sdg": {"foreign_key": "a.id"}}}, "num_samples": 3, "per_parent": 2}},
     "tables.b.num_samples", "not both"),
    ({"a": {"schema": {"id": SEQUENCE}}}, "tables.a.num_samples", "needs num_samples"),
    ({"a": {"schema": {"id": SEQUENCE}, "num_samples": 3},
      "b": {"schema": {"a_id": {"type": "integer", "x-sdg": {"foreign_key": "a.id"}}}, "per_parent": {"poisson": {"mean": -1}}}},
     "tables.b.per_parent.poisson.mean", "from 0 to 1000"),
    ({"a": {"schema": {"id": SEQUENCE}, "num_samples": 600000},
      "b": {"schema": {"a_id": {"type": "integer", "x-sdg": {"foreign_key": "a.id"}}}, "per_parent": 2}},
     "tables.b", "past the 1,000,000 a job can make"),
])
def test_tables_that_cannot_be_made_are_refused_naming_the_table_and_field(api, tables, field, reason):
    response = api.post("/generate/tables", json={"tables": tables})
    assert response.status_code in (400, 422), response.text
    detail = json.dumps(response.json()["detail"])
    assert field in detail and reason in detail, detail
