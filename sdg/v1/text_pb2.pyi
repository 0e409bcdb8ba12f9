from sdg.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SamplingOptions(_message.Message):
    __slots__ = ("temperature", "top_p", "max_new_tokens")
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    MAX_NEW_TOKENS_FIELD_NUMBER: _ClassVar[int]
    temperature: float
    top_p: float
    max_new_tokens: int
    def __init__(self, temperature: _Optional[float] = ..., top_p: _Optional[float] = ..., max_new_tokens: _Optional[int] = ...) -> None: ...

class GenerateRowsRequest(_message.Message):
    __slots__ = ("schema_json", "num_rows", "seed", "sampling", "keep_duplicates", "instructions", "optional_rate", "given_rows_json", "example_rows_json", "given_context_json")
    SCHEMA_JSON_FIELD_NUMBER: _ClassVar[int]
    NUM_ROWS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    KEEP_DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    INSTRUCTIONS_FIELD_NUMBER: _ClassVar[int]
    OPTIONAL_RATE_FIELD_NUMBER: _ClassVar[int]
    GIVEN_ROWS_JSON_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_ROWS_JSON_FIELD_NUMBER: _ClassVar[int]
    GIVEN_CONTEXT_JSON_FIELD_NUMBER: _ClassVar[int]
    schema_json: str
    num_rows: int
    seed: int
    sampling: SamplingOptions
    keep_duplicates: bool
    instructions: str
    optional_rate: float
    given_rows_json: _containers.RepeatedScalarFieldContainer[str]
    example_rows_json: _containers.RepeatedScalarFieldContainer[str]
    given_context_json: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, schema_json: _Optional[str] = ..., num_rows: _Optional[int] = ..., seed: _Optional[int] = ..., sampling: _Optional[_Union[SamplingOptions, _Mapping]] = ..., keep_duplicates: _Optional[bool] = ..., instructions: _Optional[str] = ..., optional_rate: _Optional[float] = ..., given_rows_json: _Optional[_Iterable[str]] = ..., example_rows_json: _Optional[_Iterable[str]] = ..., given_context_json: _Optional[_Iterable[str]] = ...) -> None: ...

class GenerateRowsResponse(_message.Message):
    __slots__ = ("progress", "rows", "summary", "waiting")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    WAITING_FIELD_NUMBER: _ClassVar[int]
    progress: RowProgress
    rows: RowBatch
    summary: GenerationSummary
    waiting: _common_pb2.Waiting
    def __init__(self, progress: _Optional[_Union[RowProgress, _Mapping]] = ..., rows: _Optional[_Union[RowBatch, _Mapping]] = ..., summary: _Optional[_Union[GenerationSummary, _Mapping]] = ..., waiting: _Optional[_Union[_common_pb2.Waiting, _Mapping]] = ...) -> None: ...

class RowProgress(_message.Message):
    __slots__ = ("rows_done", "rows_total", "rows_regenerated", "tokens_generated")
    ROWS_DONE_FIELD_NUMBER: _ClassVar[int]
    ROWS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    ROWS_REGENERATED_FIELD_NUMBER: _ClassVar[int]
    TOKENS_GENERATED_FIELD_NUMBER: _ClassVar[int]
    rows_done: int
    rows_total: int
    rows_regenerated: int
    tokens_generated: int
    def __init__(self, rows_done: _Optional[int] = ..., rows_total: _Optional[int] = ..., rows_regenerated: _Optional[int] = ..., tokens_generated: _Optional[int] = ...) -> None: ...

class RowBatch(_message.Message):
    __slots__ = ("rows_json",)
    ROWS_JSON_FIELD_NUMBER: _ClassVar[int]
    rows_json: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, rows_json: _Optional[_Iterable[str]] = ...) -> None: ...

class GenerationSummary(_message.Message):
    __slots__ = ("rows_generated", "rows_requested", "rows_invalid", "duplicates_removed", "distinct_ratio", "seed", "elapsed_s", "tokens_generated", "partial", "reason", "schema_json", "tokens_forced", "error", "rows_rejected_by", "grammar_compile_s")
    class RowsRejectedByEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    ROWS_GENERATED_FIELD_NUMBER: _ClassVar[int]
    ROWS_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    ROWS_INVALID_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_REMOVED_FIELD_NUMBER: _ClassVar[int]
    DISTINCT_RATIO_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_S_FIELD_NUMBER: _ClassVar[int]
    TOKENS_GENERATED_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_JSON_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FORCED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ROWS_REJECTED_BY_FIELD_NUMBER: _ClassVar[int]
    GRAMMAR_COMPILE_S_FIELD_NUMBER: _ClassVar[int]
    rows_generated: int
    rows_requested: int
    rows_invalid: int
    duplicates_removed: int
    distinct_ratio: float
    seed: int
    elapsed_s: float
    tokens_generated: int
    partial: bool
    reason: str
    schema_json: str
    tokens_forced: int
    error: str
    rows_rejected_by: _containers.ScalarMap[str, int]
    grammar_compile_s: float
    def __init__(self, rows_generated: _Optional[int] = ..., rows_requested: _Optional[int] = ..., rows_invalid: _Optional[int] = ..., duplicates_removed: _Optional[int] = ..., distinct_ratio: _Optional[float] = ..., seed: _Optional[int] = ..., elapsed_s: _Optional[float] = ..., tokens_generated: _Optional[int] = ..., partial: _Optional[bool] = ..., reason: _Optional[str] = ..., schema_json: _Optional[str] = ..., tokens_forced: _Optional[int] = ..., error: _Optional[str] = ..., rows_rejected_by: _Optional[_Mapping[str, int]] = ..., grammar_compile_s: _Optional[float] = ...) -> None: ...

class ValidateSchemaRequest(_message.Message):
    __slots__ = ("schema_json",)
    SCHEMA_JSON_FIELD_NUMBER: _ClassVar[int]
    schema_json: str
    def __init__(self, schema_json: _Optional[str] = ...) -> None: ...

class ValidateSchemaResponse(_message.Message):
    __slots__ = ("schema_json",)
    SCHEMA_JSON_FIELD_NUMBER: _ClassVar[int]
    schema_json: str
    def __init__(self, schema_json: _Optional[str] = ...) -> None: ...
