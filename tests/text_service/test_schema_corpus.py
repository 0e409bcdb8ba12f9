"""The corpus of real schemas (tests/schema_corpus: public collections, OpenAPI components,
Pydantic models): each is either accepted, with 3 rows from the tiny model that validate against
the schema as written, or refused with a message that names the keyword."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sdg.schema import SchemaError
from tests.schema_corpus.pydantic_models import MODELS
from text_service.acceptance import row_validator
from text_service.engine import RowBatch, RowRequest

CORPUS = Path(__file__).resolve().parents[1] / "schema_corpus"
# Schemas no value satisfies, or that are not JSON Schema: refused, with the keyword at fault.
REFUSED = {
    "github_hard/o10346_libstorage_unsatisfiable": "'required' names 'id', which is not in 'properties' and additionalProperties is false",
    "openapi/train_travel_booking_payment": "unknown type 'float'",
}
# Accepted, but their rows cannot all come out as asked: the call ends partial, saying why.
PARTIAL = {
    "github_medium/o48406_graphql_union_oneof_overlap": "oneOf",  # its branches overlap: every row matches two
}
SCHEMAS = {f"{p.parent.name}/{p.stem}": p for p in sorted(CORPUS.glob("*/*.json"))}


def _schema(name: str) -> dict:
    if name.startswith("pydantic/"):
        return MODELS[name.split("/", 1)[1]].model_json_schema()
    return json.loads(SCHEMAS[name].read_text(encoding="utf-8"))


def test_the_corpus_holds_at_least_sixty_schemas_of_every_kind():
    kinds = {name.split("/")[0] for name in SCHEMAS}
    assert len(SCHEMAS) + len(MODELS) >= 60
    assert {"function_calling", "github_easy", "github_medium", "github_hard", "kubernetes", "event_tracking", "news", "schemastore", "openapi"} <= kinds


@pytest.mark.parametrize("name", [*SCHEMAS, *(f"pydantic/{m}" for m in MODELS)])
def test_a_real_schema_is_accepted_with_valid_rows_or_refused_by_name(text_engine, name):
    schema = _schema(name)
    if name in REFUSED:
        with pytest.raises(SchemaError) as info:
            text_engine.prepare(schema)
        assert REFUSED[name] in str(info.value)
        return
    prepared = text_engine.prepare(schema)
    rows = []
    # Repeats kept: a schema that admits one row ({} alone, say) still gives three valid ones.
    summary = text_engine.generate(
        RowRequest(schema=schema, num_rows=3, seed=0, keep_duplicates=True),
        lambda event: isinstance(event, RowBatch) and rows.extend(json.loads(r) for r in event.rows),
    )
    if name in PARTIAL:
        assert summary.partial and PARTIAL[name] in summary.reason
    else:
        assert len(rows) == 3, summary.reason
    # jsonschema as the schema's $schema names it, with patterns read as ECMA-262 (JSON Schema's).
    check = row_validator(schema)
    for row in rows:
        instance = row["value"] if prepared.read.wrapped else row
        errors = [e.message for e in check.iter_errors(instance)]
        assert not errors, errors[:3]
