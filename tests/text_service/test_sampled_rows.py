"""Sampled fields (x-sdg) through TextEngine on the tiny model: values are forced into the rows
exactly, before the model writes the rest, and follow the requested distributions."""

import datetime as dt
import json
from collections import Counter

from scipy import stats
from statistics import NormalDist

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

    tiers = Counter(row["tier"] for row in rows)
    observed = [tiers["free"], tiers["pro"], tiers["enterprise"]]
    assert stats.chisquare(observed, [ROWS * 0.6, ROWS * 0.3, ROWS * 0.1]).pvalue > 0.01

    # The integer gaussian truncated to [18, 90]: value k has the mass of (k - 0.5, k + 0.5].
    normal = NormalDist(40, 12)
    mass = normal.cdf(90.5) - normal.cdf(17.5)
    ages = Counter(row["age"] for row in rows)
    assert min(ages) >= 18 and max(ages) <= 90
    bins = [range(18, 24)] + [range(k, k + 3) for k in range(24, 60, 3)] + [range(60, 91)]
    observed = [sum(ages[k] for k in b) for b in bins]
    expected = [ROWS * (normal.cdf(b[-1] + 0.5) - normal.cdf(b[0] - 0.5)) / mass for b in bins]
    assert stats.chisquare(observed, expected).pvalue > 0.01

    first, last = dt.date(2020, 1, 1).toordinal(), dt.date(2024, 12, 31).toordinal()
    days = [(dt.date.fromisoformat(row["signup"]).toordinal() - first) / (last - first) for row in rows]
    assert stats.kstest(days, "uniform").pvalue > 0.01

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
