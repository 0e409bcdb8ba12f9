"""The TextService gRPC servicer: converts protobuf to engine dataclasses and back, nothing more.

The engine is synchronous torch code, so each call runs it in a worker thread and streams its
events through sdg.streaming, which also ends a failed call with the summary built here. A
cancelled call sets a flag the engine checks every decode step."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace

import grpc

from sdg.given import GivenError, parse_rows
from sdg.model_info import ModelInfo
from sdg.schema import SchemaError
from sdg.seeds import draw_seed
from sdg.service_metrics import ModelServiceMetrics
from sdg.streaming import Waiting, engine_stream
from sdg.v1 import common_pb2, text_pb2, text_pb2_grpc
from text_service.engine import RequestError, RowBatch, RowProgress, RowRequest, RowSummary, TextEngine


class TextServicer(text_pb2_grpc.TextServiceServicer):
    """Serves one TextEngine, attached once the model has loaded."""

    def __init__(self, unloaded: ModelInfo, metrics: ModelServiceMetrics) -> None:
        self._unloaded = unloaded
        self._metrics = metrics
        self._engine: TextEngine | None = None

    def attach(self, engine: TextEngine) -> None:
        self._engine = engine

    def _loaded(self) -> TextEngine:
        if self._engine is None:
            raise _Abort(grpc.StatusCode.UNAVAILABLE, "the text model is still loading")
        return self._engine

    async def GetModelInfo(self, request, context) -> common_pb2.ModelInfo:
        return (self._engine.info if self._engine else self._unloaded).to_pb()

    async def ValidateSchema(self, request, context) -> text_pb2.ValidateSchemaResponse:
        try:
            schema = _parse_schema(request.schema_json)
            prepared = await asyncio.to_thread(self._loaded().prepare, schema)
        except _Abort as abort:
            await context.abort(abort.code, abort.message)
        except SchemaError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return text_pb2.ValidateSchemaResponse(schema_json=json.dumps(prepared.schema))

    async def GenerateRows(self, request, context) -> AsyncIterator[text_pb2.GenerateRowsResponse]:
        try:
            engine = self._loaded()
            row_request = _row_request(request)
        except _Abort as abort:
            self._metrics.call_ended("unavailable")
            await context.abort(abort.code, abort.message)
        except (SchemaError, GivenError) as exc:
            self._metrics.call_ended("invalid")
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        if row_request.seed is None:  # drawn here, so that even a failure's summary reports it
            row_request = replace(row_request, seed=draw_seed())
        rows_sent = 0

        def work(emit, cancelled) -> None:
            emit(engine.generate(row_request, emit, cancelled.is_set))

        def failure(error: str) -> RowSummary:
            return _failure_summary(row_request, engine, rows_sent, error)

        async for event in engine_stream(context, work, (SchemaError, RequestError), failure, "GenerateRows", self._metrics.call_ended):
            if isinstance(event, RowBatch):
                rows_sent += len(event.rows)
            yield _to_pb(event)


class _Abort(Exception):
    def __init__(self, code: grpc.StatusCode, message: str):
        self.code, self.message = code, message


def _parse_schema(text: str):
    if not text.strip():
        raise SchemaError("", "schema_json is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaError("", f"schema_json is not valid JSON: {exc}") from None
    except RecursionError:
        raise SchemaError("", "schema_json is nested too deeply to parse") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise SchemaError("", f"schema_json cannot be read: {exc}") from None


def _row_request(request: text_pb2.GenerateRowsRequest) -> RowRequest:
    sampling = request.sampling
    return RowRequest(
        schema=_parse_schema(request.schema_json),
        num_rows=request.num_rows,
        seed=request.seed if request.HasField("seed") else None,
        temperature=sampling.temperature or 1.0,
        top_p=sampling.top_p or 0.95,
        max_new_tokens=sampling.max_new_tokens or 512,
        keep_duplicates=request.keep_duplicates,
        instructions=request.instructions,
        optional_rate=request.optional_rate if request.HasField("optional_rate") else 0.5,
        given_rows=tuple(parse_rows(list(request.given_rows_json), "given_rows_json")),
        example_rows=tuple(parse_rows(list(request.example_rows_json), "example_rows_json")),
        given_context=tuple(parse_rows(list(request.given_context_json), "given_context_json")),
    )


def _failure_summary(request: RowRequest, engine: TextEngine, rows_sent: int, error: str) -> RowSummary:
    return RowSummary(
        rows_generated=rows_sent,
        rows_requested=request.num_rows,
        rows_invalid=0,
        duplicates_removed=0,
        distinct_ratio=0.0,
        seed=request.seed,
        elapsed_s=0.0,
        tokens_generated=0,
        tokens_forced=0,
        partial=True,
        reason=f"text engine failed: {error}",
        schema=engine.prepare(request.schema).schema,
        error=error,
    )


def _to_pb(event: Waiting | RowProgress | RowBatch | RowSummary) -> text_pb2.GenerateRowsResponse:
    if isinstance(event, Waiting):
        return text_pb2.GenerateRowsResponse(waiting=common_pb2.Waiting(waited_s=event.waited_s))
    if isinstance(event, RowBatch):
        return text_pb2.GenerateRowsResponse(rows=text_pb2.RowBatch(rows_json=event.rows))
    if isinstance(event, RowProgress):
        return text_pb2.GenerateRowsResponse(
            progress=text_pb2.RowProgress(
                rows_done=event.rows_done,
                rows_total=event.rows_total,
                rows_regenerated=event.rows_regenerated,
                tokens_generated=event.tokens_generated,
            )
        )
    return text_pb2.GenerateRowsResponse(
        summary=text_pb2.GenerationSummary(
            rows_generated=event.rows_generated,
            rows_requested=event.rows_requested,
            rows_invalid=event.rows_invalid,
            duplicates_removed=event.duplicates_removed,
            distinct_ratio=event.distinct_ratio,
            seed=event.seed,
            elapsed_s=event.elapsed_s,
            tokens_generated=event.tokens_generated,
            tokens_forced=event.tokens_forced,
            partial=event.partial,
            reason=event.reason,
            schema_json=json.dumps(event.schema),
            error=event.error,
            rows_rejected_by=event.rejected_by,
            grammar_compile_s=event.compile_s,
        )
    )
