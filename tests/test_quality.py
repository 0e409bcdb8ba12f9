"""sdg.quality on hand-made rows: the distributions samplers ask for agree with scipy's, rows
drawn from them pass the report's tests, and rows that do not follow them fail."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
from scipy import stats

from sdg.quality import fit, table_report
from sdg.schema import read_schema

ROWS = 3000
SCHEMA = {
    "tier": {"type": "string", "x-sdg": {"category": {"values": ["free", "pro", "enterprise", "rare"], "weights": [0.6, 0.3, 0.1, 1e-7]}}},
    "age": {"type": "integer", "minimum": 18, "maximum": 90, "x-sdg": {"gaussian": {"mean": 40, "stddev": 12}}},
    "score": {"type": "number", "minimum": 0, "maximum": 10, "x-sdg": {"gaussian": {"mean": 3, "stddev": 2}}},
    "dice": {"type": "integer", "minimum": 1, "maximum": 6, "x-sdg": {"uniform": {}}},
    "visits": {"type": "integer", "x-sdg": {"poisson": {"mean": 3}}},
    "signup": {"type": "string", "format": "date", "x-sdg": {"datetime": {"start": "2020-01-01", "end": "2024-12-31"}}},
    "seen": {"type": "string", "format": "date-time", "x-sdg": {"datetime": {"start": "2023-01-01T00:00:00Z", "end": "2024-12-31T00:00:00Z"}}},
    "id": {"type": "integer", "x-sdg": {"sequence": {}}},
    "note": {"type": "string", "maxLength": 8},
    "color": {"type": "string", "enum": ["red", "green", "blue"]},
}
TESTED = ["tier", "age", "score", "dice", "visits", "signup", "seen"]
READ = read_schema(SCHEMA)
SAMPLERS = READ.samplers.samplers


def drawn(seed: int, rows: int = ROWS) -> list[dict]:
    return [{**READ.samplers.values(seed, slot), "note": "abc" if slot % 3 else "abcdefgh", "color": "red"} for slot in range(rows)]


def test_requested_distributions_are_scipys():
    age = SAMPLERS["age"].requested()
    mass = stats.norm.cdf(90.5, 40, 12) - stats.norm.cdf(17.5, 40, 12)
    assert age.kind == "discrete" and age.cdf(40) == pytest.approx((stats.norm.cdf(40.5, 40, 12) - stats.norm.cdf(17.5, 40, 12)) / mass)
    score = SAMPLERS["score"].requested()
    low, high = SAMPLERS["score"].low, SAMPLERS["score"].high
    truncated = stats.truncnorm((low - 3) / 2, (high - 3) / 2, loc=3, scale=2)
    assert score.kind == "continuous" and all(score.cdf(x) == pytest.approx(truncated.cdf(x)) for x in (0.5, 3, 7.25))
    assert SAMPLERS["visits"].requested().cdf(4) == pytest.approx(stats.poisson.cdf(4, 3))
    assert SAMPLERS["dice"].requested().cdf(2) == pytest.approx(2 / 6)
    signup = SAMPLERS["signup"].requested()
    days = (dt.date(2024, 12, 31) - dt.date(2020, 1, 1)).days + 1 - 2  # February 29th of 2020 and 2024 never drawn
    assert signup.cdf(signup.axis("2020-02-28")) == pytest.approx(59 / days)
    assert signup.cdf(signup.axis("2020-02-29")) == signup.cdf(signup.axis("2020-02-28"))
    assert signup.cdf(signup.axis("2020-03-01")) == pytest.approx(60 / days) and signup.cdf(signup.axis("2024-12-31")) == 1.0


@pytest.mark.parametrize("seed", [1, 2])
def test_rows_drawn_from_their_samplers_pass_every_test(seed):
    report = table_report(drawn(seed), READ)
    for name in TESTED:
        result = report["fields"][name]["fit"]
        assert result["n"] == ROWS and result["p_value"] >= 0.01, (name, result)
    assert report["fields"]["score"]["fit"]["test"] == "kolmogorov-smirnov"
    assert report["fields"]["age"]["fit"]["test"] == "chi-square over binned steps"


@pytest.mark.parametrize("name, values", [
    ("tier", ["free"] * ROWS),
    ("age", np.random.default_rng(0).normal(45, 12, ROWS).round().clip(18, 90).astype(int).tolist()),
    ("score", np.random.default_rng(0).normal(3.3, 2, ROWS).clip(0, 9.9999).round(4).tolist()),
    ("dice", [1, 2, 3, 4, 5] * (ROWS // 5)),
    ("visits", np.random.default_rng(0).poisson(3.3, ROWS).tolist()),
    ("signup", [(dt.date(2020, 1, 1) + dt.timedelta(days=int(d))).isoformat() for d in np.random.default_rng(0).integers(0, 1500, ROWS)]),
    ("seen", [f"2023-{m:02d}-15T12:00:00Z" for m in np.random.default_rng(0).integers(1, 13, ROWS)]),
])
def test_values_that_do_not_follow_the_request_fail_its_test(name, values):
    result = fit(SAMPLERS[name].requested(), values)
    assert result["p_value"] < 0.01, result
    json.dumps(result, allow_nan=False)  # the UI parses it


def test_a_value_the_request_never_gives_fails_at_once():
    for result in (fit(SAMPLERS["tier"].requested(), ["free"] * 99 + ["gold"]), fit(SAMPLERS["dice"].requested(), [1, 2, 3, 4, 5, 6] * 20 + [7])):
        assert result["p_value"] == 0.0 and result["statistic"] is None, result  # JSON has no infinity
        json.dumps(result, allow_nan=False)


def test_null_rates_coverage_lengths_and_repeats_are_counted():
    rows = drawn(3, 300)
    for row in rows[:30]:
        del row["note"]
    report = table_report(rows, READ)
    fields = report["fields"]
    assert fields["tier"]["coverage"] == {"allowed": 4, "seen": 3, "missing": ["rare"]}
    assert fields["color"]["coverage"] == {"allowed": 3, "seen": 1, "missing": ["green", "blue"]}
    assert fields["note"]["source"] == "model" and fields["note"]["null_rate"] == pytest.approx(0.1)
    lengths = fields["note"]["lengths"]
    assert (lengths["n"], lengths["min"], lengths["max"], sum(lengths["histogram"]["counts"])) == (270, 3, 8, 270)
    assert fields["note"]["repeated_share"] == 1.0 and fields["id"]["distinct_share"] == 1.0 and "fit" not in fields["id"]
    assert report["rows"] == 300 and report["distinct_row_ratio"] == 1.0
    assert table_report(rows[:10] * 2, READ)["distinct_row_ratio"] == 0.5
