"""TextEngine: rows that are valid by construction, many at once.

Rows decode in waves of up to `batch_size` under the schema's RowGrammar (xgrammar), in a decode
loop of our own rather than `generate()` with a per-row LogitsProcessor:
- one forward pass per step for the whole wave; the CPU fills every row's token mask (threaded,
  in xgrammar) while the GPU runs that forward pass;
- jump-forward: when the grammar forces a string (keys, punctuation, fixed parts of dates…), it is
  appended to the row without sampling, and fed to the model in the next forward pass;
- string lengths (maxLength) are kept beside the grammar, by a cursor over each row's JSON and a
  mask on the device (text_service/bounds.py), because counted repetitions make masks slow;
- the prompt prefix every row shares is prefilled once per wave;
- two loops drive the model (text_service/decode.py): an eager one where finished rows leave the
  batch, and a fixed-shape one whose step CUDA graphs can capture;
- each row plan (text_service.cursor) decides which optional properties a row writes, and how
  many items and extra keys, within the row's token budget;
- each row is parsed strictly and validated with jsonschema against the schema as submitted
  (text_service.acceptance); a row that fails, or repeats an earlier row, is generated again and
  counted by the keyword it failed.

The engine knows nothing about gRPC: it takes a RowRequest, emits Waiting, RowProgress and
RowBatch, and returns a RowSummary.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import torch
import xgrammar as xgr

from sdg.given import GivenError, GivenRow, check_examples, given_rows
from sdg.limits import MAX_INSTRUCTIONS_CHARS, MAX_ROWS
from sdg.schema import RowSchema, read_schema
from sdg.seeds import draw_seed
from sdg.service_metrics import ModelServiceMetrics, text_metrics
from sdg.streaming import Emit, ModelLock
from text_service.acceptance import RowAcceptance, row_validator
from text_service.attention import use_grouped_attention
from text_service.bounds import StringBounds
from text_service.cursor import SchemaIndex
from text_service.decode import DecodeParts, DecodeStats, DynamicDecoder, Finished, Sampling, StaticDecoder, WaveRows
from text_service.grammar import RowGrammar, compile_error, max_row_bytes
from text_service.model import LoadedTextModel
from text_service.prompts import WavePrompts, build_prompts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RowRequest:
    schema: Any
    num_rows: int
    seed: int | None = None
    temperature: float = 1.0
    top_p: float = 0.95
    max_new_tokens: int = 512
    keep_duplicates: bool = False
    instructions: str = ""
    optional_rate: float = 0.5  # the share of rows that leave out each optional property
    given_rows: tuple[dict[str, Any], ...] = ()  # one per row: values that row holds exactly
    given_context: tuple[dict[str, Any], ...] = ()  # one per given row, or none: what its prompt shows
    example_rows: tuple[dict[str, Any], ...] = ()  # shown in the prompt every row shares


@dataclass(frozen=True)
class RowProgress:
    rows_done: int
    rows_total: int
    rows_regenerated: int
    tokens_generated: int


@dataclass(frozen=True)
class RowBatch:
    rows: list[str]


@dataclass
class RowSummary:
    rows_generated: int
    rows_requested: int
    rows_invalid: int
    duplicates_removed: int
    distinct_ratio: float
    seed: int
    elapsed_s: float
    tokens_generated: int
    tokens_forced: int
    partial: bool
    reason: str
    schema: dict[str, Any]
    error: str = ""  # why the engine failed part-way; empty when the call ended as planned
    rejected_by: dict[str, int] = field(default_factory=dict)  # invalid rows by the keyword (or limit) they failed
    compile_s: float = 0.0  # the schema's grammar compile time, when it was first compiled


class GivenQueue:
    """Which given row each slot holds: a row whose slot fails goes back to be given again, so
    each given row ends up in exactly one output row. Empty when the request gives none."""

    def __init__(self, texts: list[GivenRow]):
        self.all = texts
        self.waiting = deque(range(len(texts)))
        self.held: dict[int, int] = {}  # slot -> given row

    def left(self, wanted: int) -> int:
        """How many slots the next wave may start: one per waiting given row, when rows are given."""
        return len(self.waiting) if self.all else wanted

    def assign(self, slots: list[int]) -> None:
        if self.all:
            self.held.update((slot, self.waiting.popleft()) for slot in slots)

    def texts(self, slots: list[int]) -> list[GivenRow] | None:
        return [self.all[self.held[slot]] for slot in slots] if self.all else None

    def settle(self, slot: int, kept: bool) -> None:
        index = self.held.pop(slot, None)
        if index is not None and not kept:
            self.waiting.appendleft(index)


def row_token_limit(prepared: PreparedSchema, request: RowRequest) -> int:
    """The most tokens a row may decode. No row can be longer in tokens than in bytes, so the
    schema's byte bound caps decoding (and the static decoder's KV cache) where it is tighter."""
    return min(request.max_new_tokens, prepared.max_bytes or request.max_new_tokens)


def _gave_up(attempts: int, kept: RowAcceptance, request: RowRequest, row_time_limit_s: float) -> str:
    """Why a call stopped short of its rows, with the remedy for what used up its attempts."""
    # The limits are told with their remedies below; the rest name what rows failed.
    failed = ", ".join(f"{keyword}: {n}" for keyword, n in kept.rejected_by.most_common() if keyword not in ("token limit", "time limit"))
    reason = f"gave up after {attempts} attempts: {kept.invalid} invalid rows{f' ({failed})' if failed else ''}, {kept.duplicates} duplicates"
    remedies = []
    if kept.cut_off:
        remedies.append(f"{kept.cut_off} rows ran past the {request.max_new_tokens}-token row limit: fewer or shorter fields fit")
    if kept.timed_out:
        remedies.append(f"{kept.timed_out} rows ran past the {row_time_limit_s:g} s row time limit: a pattern may be slow to match")
    if kept.duplicates and not request.keep_duplicates:
        remedies.append("set keep_duplicates to allow repeats")
    return f"{reason} ({'; '.join(remedies)})" if remedies else reason


# A call whose first this-many rows were all thrown away gives up: the schema's rows do not come out valid.
HOPELESS_AFTER = 32
# Tokens a row's own prompt line may run past row 0's (its number and theme word).
ROW_LINE_SLACK = 16


class RequestError(ValueError):
    """A request the engine cannot honour; str() names the field and the reason."""


@dataclass
class PreparedSchema:
    """A schema normalized, compiled to a grammar, and ready to validate rows against."""

    read: RowSchema
    grammar: RowGrammar
    compiled: xgr.CompiledGrammar
    validator: jsonschema.protocols.Validator  # of the schema as submitted
    max_bytes: int  # the longest row the grammar admits, in bytes
    index: SchemaIndex
    compile_s: float

    @property
    def schema(self) -> dict[str, Any]:
        return self.read.schema

    @property
    def written(self) -> dict[str, Any]:
        """What the model writes: the schema less its computed fields."""
        return self.read.written


# Compiled schemas kept for later calls and jobs.
PREPARED_CACHE = 64


class TextEngine:
    def __init__(
        self,
        loaded: LoadedTextModel,
        batch_size: int = 0,
        mask_threads: int = 0,
        feed_width: int = 0,
        decode: str = "auto",
        max_rows: int = MAX_ROWS,
        row_time_limit_s: float = 120.0,
        metrics: ModelServiceMetrics | None = None,
    ):
        # The service passes the metrics it exports; an engine built on its own keeps its own.
        self.metrics = metrics or text_metrics()
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.device = loaded.device
        self.info = loaded.info
        self.batch_size = batch_size or (512 if self.device.type == "cuda" else 128)
        self.max_rows = max_rows
        self.row_time_limit_s = row_time_limit_s
        vocab_size = self.model.config.vocab_size
        tokenizer_info = xgr.TokenizerInfo.from_huggingface(
            self.tokenizer, vocab_size=vocab_size, stop_token_ids=[self.tokenizer.eos_token_id]
        )
        self.compiler = xgr.GrammarCompiler(tokenizer_info, cache_enabled=True)
        self.parts = DecodeParts(
            model=self.model,
            tokenizer=self.tokenizer,
            device=self.device,
            vocab_size=vocab_size,
            pad_id=self.tokenizer.pad_token_id,
            batch_size=self.batch_size,
            string_bounds=StringBounds(tokenizer_info.decoded_vocab, vocab_size, self.device),
            mask_filler=xgr.BatchGrammarMatcher(max_threads=mask_threads or "auto"),
            cache_kwarg="cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values",
        )
        cuda = self.device.type == "cuda"
        if decode == "auto":
            decode = "static" if cuda else "dynamic"
        if decode == "static":
            # Fixed shapes; on CUDA the step is captured in CUDA graphs.
            self.decoder = StaticDecoder(self.parts, compile_step=cuda)
        elif decode == "dynamic":
            # Tokens fed per row per step. Every row in a step pays for the widest feed: cheap on
            # a GPU while decode is memory-bound, a loss on a CPU (measured: 1 is fastest there).
            self.decoder = DynamicDecoder(self.parts, feed_width=feed_width or (4 if cuda else 1))
        else:
            raise ValueError(f"decode: expected auto, static or dynamic, got {decode!r}")
        self.decode_mode = decode
        # Attention reads each key/value head once instead of copying it per query head.
        self.grouped_attention = use_grouped_attention(self.model)
        self._prepared: OrderedDict[str, PreparedSchema] = OrderedDict()
        self._prepared_lock = threading.Lock()
        # One decode loop at a time: the model is the shared resource, and waves already batch.
        # Read late: warm_up swaps self.metrics, and its wait is no caller's either.
        self.model_lock = ModelLock(lambda seconds: self.metrics.model_wait.observe(seconds))
        # The counters and timings of the last generate() call, for the bench's decode profile.
        self.last_stats: DecodeStats | None = None

    def warm_up(self) -> None:
        """Compiles and records the static decoder's CUDA graphs for a full batch at the cache
        length of small schemas, at each attention limit (30-40 s each for Qwen2.5-1.5B on an
        H200), so the first job does not pay for it; other shapes compile on first use. A no-op
        where nothing is compiled."""
        if not getattr(self.decoder, "compile_step", False):
            return
        started = time.perf_counter()
        schema = {"name": "string", "age": "int", "score": "float"}
        counted, self.metrics = self.metrics, text_metrics()  # warm-up rows are no caller's
        try:
            self.generate(RowRequest(schema=schema, num_rows=min(self.batch_size, self.max_rows), seed=0))
        finally:
            self.metrics = counted
        with self.model_lock:
            self.decoder.warm_up_limits()
        log.info("decode warm-up (batch %d) done in %.1fs", self.batch_size, time.perf_counter() - started)

    # ---- schema ---------------------------------------------------------------------------
    def prepare(self, schema: Any) -> PreparedSchema:
        """Reads and compiles a schema, cached by what it reads as. Raises SchemaError."""
        read = read_schema(schema)
        key = json.dumps([read.schema, read.source], sort_keys=True)
        with self._prepared_lock:
            cached = self._prepared.get(key)
            if cached:
                self._prepared.move_to_end(key)
                return cached
        started = time.perf_counter()
        written = read.written
        grammar = RowGrammar(written)
        try:
            compiled = self.compiler.compile_grammar(grammar.ebnf, root_rule_name=grammar.root)
        except (RuntimeError, UnicodeError) as exc:  # xgrammar's own message can fail to decode
            raise compile_error(exc) from None
        compile_s = time.perf_counter() - started
        validator = row_validator(read.source)
        index = SchemaIndex(written, lambda text: len(self.parts.forced_ids(text)))
        prepared = PreparedSchema(read, grammar, compiled, validator, max_row_bytes(written), index, compile_s)
        with self._prepared_lock:
            self._prepared[key] = prepared
            while len(self._prepared) > PREPARED_CACHE:
                self._prepared.popitem(last=False)
        return prepared

    def check_request(self, request: RowRequest) -> PreparedSchema:
        if not 1 <= request.num_rows <= self.max_rows:
            raise RequestError(f"num_rows: must be between 1 and {self.max_rows}, got {request.num_rows}")
        if not request.temperature > 0:
            raise RequestError(f"temperature: must be greater than 0, got {request.temperature}")
        if not 0 < request.top_p <= 1:
            raise RequestError(f"top_p: must be in (0, 1], got {request.top_p}")
        if request.max_new_tokens < 8:
            raise RequestError(f"max_new_tokens: must be at least 8, got {request.max_new_tokens}")
        if not 0 <= request.optional_rate <= 1:
            raise RequestError(f"optional_rate: must be in [0, 1], got {request.optional_rate}")
        if len(request.instructions) > MAX_INSTRUCTIONS_CHARS:
            raise RequestError(f"instructions: at most {MAX_INSTRUCTIONS_CHARS} characters, got {len(request.instructions)}")
        if request.given_rows and len(request.given_rows) != request.num_rows:
            raise RequestError(f"given_rows_json: has {len(request.given_rows)} rows, but num_rows is {request.num_rows}: give one per row")
        try:
            check_examples(list(request.example_rows))
        except GivenError as err:
            raise RequestError(str(err)) from None
        prepared = self.prepare(request.schema)
        if prepared.read.design:
            prepared.read.design.check_rows(request.num_rows)
        self._check_context(prepared, request, self.given(prepared, request))
        return prepared

    def given(self, prepared: PreparedSchema, request: RowRequest) -> list[GivenRow]:
        """The request's given rows as the JSON texts rows hold. Raises RequestError."""
        try:
            return given_rows(prepared.read, list(request.given_rows), list(request.given_context))
        except GivenError as err:
            raise RequestError(str(err)) from None

    def _check_context(self, prepared: PreparedSchema, request: RowRequest, given: list[GivenRow]) -> None:
        """A row's prompt and its longest decode must fit the model's context: past it the
        positions have no trained meaning. A many-fielded schema or long instructions can pass it."""
        context = getattr(self.model.config, "max_position_embeddings", None)
        if not context:
            return

        widest = [max(given, key=lambda row: len(row.context) + sum(len(k) + len(v) for k, v in row.texts.items()))] if given else None

        def prompt_tokens(instructions: str, given: list[GivenRow] | None, examples: tuple[dict[str, Any], ...]) -> int:
            # Other rows' numbers and theme words are a few tokens longer than row 0's.
            return len(self.wave_prompts(prepared, instructions, 0, [0], given, examples).full(0)) + ROW_LINE_SLACK

        smallest = prepared.index.least_tokens(prepared.written)
        if smallest > row_token_limit(prepared, request):
            raise RequestError(
                f"max_new_tokens: any row of this schema takes at least {smallest} tokens (its required keys alone), "
                f"more than the {row_token_limit(prepared, request)} a row may take"
            )
        prompt = prompt_tokens(request.instructions, widest, request.example_rows)
        if prompt >= context:
            # What the caller added is to blame when the schema's prompt alone would fit.
            field = "schema_json"
            if prompt_tokens("", None, ()) < context:
                field = next(name for name, fits in (
                    ("instructions", prompt_tokens("", widest, request.example_rows) < context),
                    ("example_rows_json", prompt_tokens("", widest, ()) < context),
                    ("given_rows_json", True),
                ) if fits)
            raise RequestError(f"{field}: a row's prompt takes about {prompt} tokens, past the model's context of {context}")
        longest = row_token_limit(prepared, request)
        if prompt + longest > context:
            field = "max_new_tokens" if longest == request.max_new_tokens else "schema_json"
            raise RequestError(
                f"{field}: a row may take {longest} tokens, but its prompt ({prompt} tokens) leaves "
                f"{context - prompt} of the model's context of {context}"
            )

    # ---- generation -------------------------------------------------------------------------
    def generate(self, request: RowRequest, emit: Emit = lambda event: None, cancelled: Callable[[], bool] = lambda: False) -> RowSummary:
        """Emits Waiting while earlier calls hold the model, then RowBatch and RowProgress as rows
        finish; returns the RowSummary. Raises RequestError or SchemaError before any of it."""
        prepared = self.check_request(request)
        given = GivenQueue(self.given(prepared, request))
        seed = request.seed if request.seed is not None else draw_seed()
        stats = DecodeStats()
        kept = RowAcceptance(prepared.validator, prepared.read.wrapped, request.keep_duplicates, prepared.read.design)
        done = 0
        slot = 0
        # Invalid rows and duplicates are regenerated, within a budget, so a schema that admits
        # few distinct rows ends as an honest partial result instead of looping forever. Each
        # order rule the model's values are checked against may throw away about half the rows.
        checked = prepared.read.design.checked_rules(prepared.read.samplers) if prepared.read.design else 0
        budget = request.num_rows + max(64, request.num_rows) + request.num_rows * (min(2**checked, 8) - 1)
        reason = ""
        with self.model_lock.turn(emit, cancelled) as holding:
            started = time.perf_counter()  # the summary's elapsed_s is the call's own work
            while holding and done < request.num_rows:
                if cancelled():
                    reason = "cancelled"
                    break
                # Out of attempts, or none of the first ones valid: more of the same would not be.
                if slot >= budget or slot >= HOPELESS_AFTER and kept.valid == 0 or kept.timed_out >= 3 and kept.timed_out > kept.valid:
                    reason = _gave_up(slot, kept, request, self.row_time_limit_s)
                    break
                # While rows are being thrown away, a wave decodes more than are missing.
                share = (kept.valid + 1) / (kept.valid + kept.invalid + 1)
                wanted = math.ceil((request.num_rows - done) / max(share, 0.1))
                wave = list(range(slot, slot + min(self.batch_size, wanted, budget - slot, given.left(wanted))))
                slot += len(wave)
                given.assign(wave)
                self.metrics.batch(len(wave), self.batch_size)
                steps_before, wave_began = stats.steps, time.perf_counter()
                for finished in self._decode_wave(prepared, request, seed, wave, given.texts(wave), stats, cancelled):
                    checking = time.perf_counter()
                    accepted = []
                    for item in finished:
                        if done + len(accepted) >= request.num_rows:
                            break
                        row = kept.offer(item.text, item.ran_out, item.timed_out, item.sample_failed)
                        given.settle(item.slot, row is not None)
                        if row is not None:
                            accepted.append(row)
                    stats.check_s += time.perf_counter() - checking
                    if accepted:
                        done += len(accepted)
                        self.metrics.made.inc(len(accepted))
                        emit(RowBatch(accepted))
                    emit(RowProgress(done, request.num_rows, kept.regenerated, stats.tokens))
                self.metrics.stepped(stats.steps - steps_before, time.perf_counter() - wave_began)
        if not reason and done < request.num_rows:
            reason = "cancelled"
        stats.invalid, stats.cut_off, stats.duplicates, stats.valid = kept.invalid, kept.cut_off, kept.duplicates, kept.valid
        self.last_stats = stats
        return RowSummary(
            rows_generated=done,
            rows_requested=request.num_rows,
            rows_invalid=kept.invalid,
            duplicates_removed=0 if request.keep_duplicates else kept.duplicates,
            distinct_ratio=kept.distinct_ratio,
            seed=seed,
            elapsed_s=time.perf_counter() - started,
            tokens_generated=stats.tokens,
            tokens_forced=stats.forced,
            partial=done < request.num_rows,
            reason=reason,
            schema=prepared.schema,
            rejected_by=dict(kept.rejected_by),
            compile_s=prepared.compile_s,
        )

    def wave_prompts(self, prepared: PreparedSchema, instructions: str, seed: int, slots: list[int],
                     given: list[GivenRow] | None = None, examples: tuple[dict[str, Any], ...] = ()) -> WavePrompts:
        """The prompts of a wave of `slots`: a conditioned description gets each row's values
        known before decoding (sampled and given)."""
        design = prepared.read.design
        known = None
        if design and design.conditioned:
            known = [prepared.read.known_values(seed, slot, {n: json.loads(t) for n, t in given[i].texts.items()} if given else None)
                     for i, slot in enumerate(slots)]
        return build_prompts(self.tokenizer, prepared.written, instructions, seed, slots, given, examples, design, known)

    def _decode_wave(
        self,
        prepared: PreparedSchema,
        request: RowRequest,
        seed: int,
        slots: list[int],
        given: list[GivenRow] | None,
        stats: DecodeStats,
        cancelled: Callable[[], bool],
    ) -> Iterator[list[Finished]]:
        """Decodes one wave of rows; yields, after every step, the rows that finished in it."""
        started = time.perf_counter()
        prompts = self.wave_prompts(prepared, request.instructions, seed, slots, given, request.example_rows)
        limit = row_token_limit(prepared, request)
        sampling = Sampling(
            request.temperature, request.top_p, limit, request.optional_rate, self.row_time_limit_s,
            row_budget=limit if prepared.max_bytes > limit else 1 << 30,
        )
        rows = WaveRows(self.parts, prepared, slots, sampling, stats, seed, given)
        generator = torch.Generator(device=self.device).manual_seed((seed * 1_000_003 + slots[0]) % 2**63)
        stats.prepare_s += time.perf_counter() - started
        with torch.inference_mode():
            yield from self.decoder.decode(rows, prompts, generator, cancelled)
