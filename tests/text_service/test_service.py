"""The text service over real gRPC: `python -m text_service` with the tiny model on a free port."""

import json

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from sdg.v1 import common_pb2, text_pb2, text_pb2_grpc
from tests.text_service.schemas import SEED_SCHEMA


@pytest.fixture
def stub(text_service):
    with grpc.insecure_channel(text_service.address) as channel:
        yield text_pb2_grpc.TextServiceStub(channel), channel


def generate(stub, **kwargs):
    return list(stub.GenerateRows(text_pb2.GenerateRowsRequest(**kwargs), timeout=120))


def test_health_serving_and_reflection(stub):
    _, channel = stub
    health = health_pb2_grpc.HealthStub(channel)
    for name in ("", "sdg.v1.TextService"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    reply = next(reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
    names = {s.name for s in reply.list_services_response.service}
    assert {"sdg.v1.TextService", "grpc.health.v1.Health"} <= names


def test_model_info_says_demo_model(stub):
    info = stub[0].GetModelInfo(common_pb2.GetModelInfoRequest(), timeout=5)
    assert info.loaded and info.demo_model
    assert "demo model, random weights" in info.display_name
    assert info.device == "cpu"


def test_generate_rows_streams_progress_rows_then_summary(stub):
    messages = generate(stub[0], schema_json=json.dumps(SEED_SCHEMA), num_rows=20, seed=9)
    kinds = [m.WhichOneof("event") for m in messages]
    assert kinds[-1] == "summary" and kinds.count("summary") == 1
    assert "progress" in kinds and "rows" in kinds
    rows = [json.loads(r) for m in messages if m.HasField("rows") for r in m.rows.rows_json]
    assert len(rows) == 20
    for row in rows:
        assert isinstance(row["customer_name"], str)
        assert isinstance(row["age"], int)
        assert isinstance(row["order_value"], float)
    summary = messages[-1].summary
    assert summary.rows_generated == 20 and summary.seed == 9 and not summary.partial
    assert json.loads(summary.schema_json)["properties"]["age"] == {"type": "integer"}
    progress = [m.progress for m in messages if m.HasField("progress")]
    assert progress[-1].rows_done == 20 and progress[-1].rows_total == 20


@pytest.mark.parametrize(
    "schema_json, num_rows, message",
    [
        (json.dumps({"age": {"type": "integer", "minimum": 9, "maximum": 1}}), 3, "schema.age: minimum 9"),
        (json.dumps({"x": "colour"}), 3, "schema.x: unknown type"),
        (json.dumps({"t": {"type": "string", "x-sdg": {"category": {"values": ["a"], "weights": [0]}}}}), 3,
         "schema.t: weights must sum to a positive number, got 0 (at #/properties/t/x-sdg/category/weights)"),
        ("{not json", 3, "not valid JSON"),
        ('{"a": ' * 3000 + '"int"' + "}" * 3000, 3, "nested too deeply"),
        ('{"a": {"type": "integer", "maximum": ' + "9" * 5000 + "}}", 3, "schema_json cannot be read"),
        (json.dumps(SEED_SCHEMA), 0, "num_rows"),
    ],
)
def test_bad_input_is_invalid_argument(stub, schema_json, num_rows, message):
    with pytest.raises(grpc.RpcError) as info:
        generate(stub[0], schema_json=schema_json, num_rows=num_rows)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in info.value.details()


@pytest.mark.parametrize("given, examples, message", [
    (['{"x": 1'], [], "given_rows_json[0]: not valid JSON"),
    (['[1]'], [], "given_rows_json[0]: must be a JSON object, got list"),
    (['{"age": "old"}'], [], "given_rows_json[0].age: 'old' does not satisfy the field's schema"),
    ([], ['{"age": 3}'] * 33, "example_rows_json: at most 32 rows"),
])
def test_given_and_example_rows_that_cannot_be_used_are_invalid_argument_naming_the_entry(stub, given, examples, message):
    with pytest.raises(grpc.RpcError) as info:
        generate(stub[0], schema_json=json.dumps({"age": "int"}), num_rows=len(given) or 1, given_rows_json=given, example_rows_json=examples)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in info.value.details()


def test_given_rows_over_grpc_land_in_the_rows(stub):
    given = [json.dumps({"age": 30 + i}) for i in range(5)]
    events = generate(stub[0], schema_json=json.dumps({"age": "int", "name": "string"}), num_rows=5, seed=3, given_rows_json=given)
    rows = [json.loads(r) for e in events if e.HasField("rows") for r in e.rows.rows_json]
    assert sorted(r["age"] for r in rows) == [30, 31, 32, 33, 34]


def test_validate_schema(stub):
    reply = stub[0].ValidateSchema(text_pb2.ValidateSchemaRequest(schema_json=json.dumps({"d": "date"})), timeout=10)
    assert json.loads(reply.schema_json)["properties"]["d"] == {"type": "string", "format": "date"}
    with pytest.raises(grpc.RpcError) as info:
        stub[0].ValidateSchema(text_pb2.ValidateSchemaRequest(schema_json=json.dumps({"d": "day"})), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_cancelled_call_leaves_the_service_working(stub):
    call = stub[0].GenerateRows(
        text_pb2.GenerateRowsRequest(schema_json=json.dumps(SEED_SCHEMA), num_rows=5000, seed=1), timeout=120
    )
    next(call)
    call.cancel()
    messages = generate(stub[0], schema_json=json.dumps(SEED_SCHEMA), num_rows=3, seed=2)
    assert messages[-1].summary.rows_generated == 3


def test_a_call_behind_a_busy_model_streams_waiting_then_runs(stub):
    earlier = stub[0].GenerateRows(
        text_pb2.GenerateRowsRequest(schema_json=json.dumps(SEED_SCHEMA), num_rows=5000, seed=1), timeout=120
    )
    next(earlier)  # the model is busy with it
    later = stub[0].GenerateRows(text_pb2.GenerateRowsRequest(schema_json=json.dumps(SEED_SCHEMA), num_rows=3, seed=2), timeout=120)
    first = next(later)
    assert first.WhichOneof("event") == "waiting" and first.waiting.waited_s < 1
    earlier.cancel()
    assert list(later)[-1].summary.rows_generated == 3


async def test_an_engine_failure_mid_stream_ends_with_a_partial_summary(text_engine):
    """Once rows have streamed, a failure is the stream's last event: the rows sent stand, and the
    summary says the output is partial and why."""
    from tests.conftest import FailsAfterFirst
    from text_service.engine import RowBatch
    from text_service.server import create_server
    from text_service.settings import TextSettings

    server, port, servicer, _ = create_server(TextSettings(listen="127.0.0.1:0"))
    servicer.attach(FailsAfterFirst(text_engine, RowBatch))
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = text_pb2_grpc.TextServiceStub(channel)
            request = text_pb2.GenerateRowsRequest(schema_json=json.dumps(SEED_SCHEMA), num_rows=50, seed=4)
            messages = [m async for m in stub.GenerateRows(request, timeout=60)]
    finally:
        await server.stop(None)
    rows = [r for m in messages if m.HasField("rows") for r in m.rows.rows_json]
    summary = messages[-1].summary
    assert rows and summary.partial and summary.rows_generated == len(rows) < 50
    assert "CUDA out of memory (simulated)" in summary.reason
    assert summary.error == "RuntimeError: CUDA out of memory (simulated)"  # a failure, not a planned stop


def test_model_info_names_the_model_while_it_loads():
    import asyncio

    from sdg.service_metrics import text_metrics
    from text_service.model import unloaded_info
    from text_service.servicer import TextServicer
    from text_service.settings import TextSettings

    servicer = TextServicer(unloaded_info(TextSettings(model="tiny")), text_metrics())
    info = asyncio.run(servicer.GetModelInfo(common_pb2.GetModelInfoRequest(), None))
    assert not info.loaded and info.model_id == "tiny" and info.demo_model
    assert "demo model, random weights" in info.display_name


def test_a_pydantic_model_schema_over_grpc_gives_rows_valid_against_it(stub):
    import jsonschema

    from tests.text_service.schemas import Customer

    schema = Customer.model_json_schema()
    messages = generate(stub[0], schema_json=json.dumps(schema), num_rows=6, seed=4, optional_rate=0.5)
    rows = [json.loads(r) for m in messages if m.HasField("rows") for r in m.rows.rows_json]
    summary = messages[-1].summary
    assert len(rows) == 6 and not summary.partial, summary.reason
    for row in rows:
        jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER).validate(row)
        Customer.model_validate(row)
    assert summary.grammar_compile_s > 0
    assert "$defs" in json.loads(summary.schema_json)


def test_validate_schema_over_grpc_names_the_json_pointer_of_a_refused_keyword(stub):
    bad = {"type": "object", "properties": {"a": {"type": "string", "pattern": "(x)\\1"}}}
    with pytest.raises(grpc.RpcError) as info:
        stub[0].ValidateSchema(text_pb2.ValidateSchemaRequest(schema_json=json.dumps(bad)), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "(at #/properties/a/pattern)" in info.value.details()
