"""Sampled fields (x-sdg) through TextEngine on the tiny model: values are forced into the rows
exactly, before the model writes the rest, and follow the requested distributions."""

import json

from sdg.quality import fit
from sdg.schema import read_schema
from text_service.engine import RowBatch, RowRequest

ROWS = 2400
SCHEMA = {
    "id": {"type": "integer", "x-sdg": {"sequence": {"start": 1000, "step": 1}}},
    "note": {"type": "string", "maxLength": 8},
    "tier": {"type": "string", "x-sdg": {"category": {"values": ["free", "pro", "enterprise"], "weights": [0.6, 0.3, 0.1]}}},
    "age": {"type": "integer", "minimum": 18, "maximum": 90, "x-sdg": {"gaussian": {"mean": 40, "stddev": 12}}},
    "signup": {"type": "string", "format": "date", "x-sdg": {"datetime": {"start": "2020-01-01", "end": "2024-12-31"}}},
    "name": {"type": "string", "x-sdg": {"faker": {"provider": "first_name", "locale": "nl_NL"}}},
}


def generate(engine, **kwargs):
    rows = []
    summary = engine.generate(RowRequest(**kwargs), lambda event: rows.extend(event.rows) if isinstance(event, RowBatch) else None)
    return [json.loads(row) for row in rows], summary


def test_sampled_fields_follow_their_distributions_and_lead_each_row(text_engine):
    rows, summary = generate(text_engine, schema=SCHEMA, num_rows=ROWS, seed=11)
    assert len(rows) == ROWS and not summary.partial, summary.reason
    assert all(list(row)[:5] == ["id", "tier", "age", "signup", "name"] for row in rows)  # before the model's field

    # The requested distributions are sdg.samplers', and sdg.quality tests rows against them.
    samplers = read_schema(SCHEMA).samplers.samplers
    ages = [row["age"] for row in rows]
    assert min(ages) >= 18 and max(ages) <= 90
    for name in ("tier", "age", "signup"):
        result = fit(samplers[name].requested(), [row[name] for row in rows])
        assert result["p_value"] > 0.01, (name, result)

    ids = [row["id"] for row in rows]
    assert len(set(ids)) == len(ids) and min(ids) >= 1000
    assert summary.tokens_forced > summary.tokens_generated  # sampled values cost no sampling


def test_sampled_values_depend_on_the_seed_only_and_both_decoders_force_them(text_engine):
    from text_service.server import load_engine
    from text_service.settings import TextSettings
    from tests.conftest import TEST_MODEL_CACHE

    ours, _ = generate(text_engine, schema=SCHEMA, num_rows=12, seed=4)
    again, _ = generate(text_engine, schema=SCHEMA, num_rows=12, seed=4)
    assert ours == again
    static = load_engine(TextSettings(model="tiny", model_cache_dir=TEST_MODEL_CACHE, device="cpu", decode="static"))
    theirs, _ = generate(static, schema=SCHEMA, num_rows=12, seed=4)
    assert theirs == ours
    # Rows finish in any order; a row's sampled values depend on its slot (its id) and the seed.
    def sampled(rows):
        return {row["id"]: {k: row[k] for k in ("tier", "age", "signup", "name")} for row in rows}

    other, _ = generate(text_engine, schema={**SCHEMA, "note": {"type": "string", "maxLength": 20}}, num_rows=12, seed=4)
    common = sampled(ours).keys() & sampled(other).keys()
    assert len(common) >= 6 and all(sampled(ours)[i] == sampled(other)[i] for i in common)


def test_a_schema_of_sampled_fields_only_completes_without_sampling(text_engine):
    schema = {"id": {"type": "integer", "x-sdg": {"sequence": {}}}, "key": {"type": "string", "format": "uuid", "x-sdg": {"uuid": {}}}}
    rows, summary = generate(text_engine, schema=schema, num_rows=50, seed=1)
    assert sorted(row["id"] for row in rows) == list(range(1, 51))
    # One sampled token a row: the comma that ends the number (the grammar would allow more digits).
    assert summary.tokens_generated == 50 and summary.rows_invalid == 0
