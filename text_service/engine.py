"""TextEngine: rows that are valid by construction, many at once.

Rows decode in waves of up to `batch_size` under the schema's RowGrammar (xgrammar), in a decode
loop of our own rather than `generate()` with a per-row LogitsProcessor:
- one forward pass per step for the whole wave; the CPU fills every row's token mask (threaded,
  in xgrammar) while the GPU runs that forward pass;
- jump-forward: when the grammar forces a string (keys, punctuation, fixed parts of dates…), it is
  appended to the row without sampling, and fed to the model in the next forward pass;
- finished rows leave the batch, so late steps only pay for rows still running;
- each row is parsed strictly and validated with jsonschema; a row that fails, or repeats an
  earlier row, is generated again and counted.

The engine knows nothing about gRPC: it takes a RowRequest and yields RowProgress, RowBatch and,
last, RowSummary.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import torch
import xgrammar as xgr

from sdg.schema import SchemaError, normalize_schema
from text_service.grammar import RowGrammar
from text_service.model import LoadedTextModel
from text_service.prompts import build_prompt

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


RowEvent = RowProgress | RowBatch | RowSummary


class RequestError(ValueError):
    """A request the engine cannot honour; str() names the field and the reason."""


@dataclass
class PreparedSchema:
    """A schema normalized, compiled to a grammar, and ready to validate rows against."""

    schema: dict[str, Any]
    grammar: RowGrammar
    compiled: xgr.CompiledGrammar
    validator: jsonschema.protocols.Validator


@dataclass
class _Stats:
    tokens: int = 0
    forced: int = 0
    invalid: int = 0
    duplicates: int = 0
    valid: int = 0


@dataclass
class _Finished:
    """A row slot that left the decode loop: its text, or None when it ran out of tokens."""

    slot: int
    text: str | None
    tokens: int = 0
    extra: dict = field(default_factory=dict)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"non-finite number {text}")
    return value


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


class TextEngine:
    def __init__(self, loaded: LoadedTextModel, batch_size: int = 0, mask_threads: int = 0, feed_width: int = 0):
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.device = loaded.device
        self.description = loaded.description
        self.batch_size = batch_size or (512 if self.device.type == "cuda" else 128)
        self.vocab_size = self.model.config.vocab_size
        self.tokenizer_info = xgr.TokenizerInfo.from_huggingface(
            self.tokenizer, vocab_size=self.vocab_size, stop_token_ids=[self.tokenizer.eos_token_id]
        )
        self.compiler = xgr.GrammarCompiler(self.tokenizer_info, cache_enabled=True)
        self.mask_filler = xgr.BatchGrammarMatcher(max_threads=mask_threads or "auto")
        self.pad_id = self.tokenizer.pad_token_id
        # Tokens fed per row per step. Every row in a step pays for the widest feed: cheap on a GPU
        # while decode is memory-bound, but a loss on a CPU (measured: 1 is fastest there).
        self.feed_width = feed_width or (4 if self.device.type == "cuda" else 1)
        # transformers renamed `past_key_values` to `cache`; use whichever this version takes.
        params = inspect.signature(self.model.forward).parameters
        self.cache_kwarg = "cache" if "cache" in params else "past_key_values"
        self._prepared: dict[str, PreparedSchema] = {}
        self._prepared_lock = threading.Lock()
        # One decode loop at a time: the model is the shared resource, and waves already batch.
        self._decode_lock = threading.Lock()

    # ---- schema ---------------------------------------------------------------------------
    def prepare(self, schema: Any) -> PreparedSchema:
        """Normalizes and compiles a schema, cached by its normalized form. Raises SchemaError."""
        normalized = normalize_schema(schema)
        key = json.dumps(normalized, sort_keys=True)
        with self._prepared_lock:
            cached = self._prepared.get(key)
        if cached:
            return cached
        grammar = RowGrammar(normalized)
        try:
            compiled = self.compiler.compile_grammar(grammar.ebnf, root_rule_name=grammar.root)
        except RuntimeError as exc:
            raise SchemaError("", f"cannot build a grammar for this schema: {exc}") from None
        validator_cls = jsonschema.validators.validator_for(normalized, default=jsonschema.Draft202012Validator)
        validator = validator_cls(normalized, format_checker=validator_cls.FORMAT_CHECKER)
        prepared = PreparedSchema(normalized, grammar, compiled, validator)
        with self._prepared_lock:
            self._prepared[key] = prepared
        return prepared

    def check_request(self, request: RowRequest) -> PreparedSchema:
        if request.num_rows < 1:
            raise RequestError(f"num_rows: must be at least 1, got {request.num_rows}")
        if not request.temperature > 0:
            raise RequestError(f"temperature: must be greater than 0, got {request.temperature}")
        if not 0 < request.top_p <= 1:
            raise RequestError(f"top_p: must be in (0, 1], got {request.top_p}")
        if request.max_new_tokens < 8:
            raise RequestError(f"max_new_tokens: must be at least 8, got {request.max_new_tokens}")
        return self.prepare(request.schema)

    def parse_row(self, text: str, prepared: PreparedSchema) -> dict[str, Any] | None:
        """The row as a dict when it is strict JSON, finite, and valid against the schema."""
        try:
            row = json.loads(text, parse_float=_finite_float, parse_constant=_reject_constant)
        except ValueError:
            return None
        if not isinstance(row, dict) or not prepared.validator.is_valid(row):
            return None
        return row

    # ---- generation -------------------------------------------------------------------------
    def generate(self, request: RowRequest, cancelled: Callable[[], bool] = lambda: False) -> Iterator[RowEvent]:
        """Yields progress and batches of valid rows as they finish, then one RowSummary."""
        prepared = self.check_request(request)
        started = time.perf_counter()
        seed = request.seed if request.seed is not None else random.SystemRandom().randrange(2**63)
        stats = _Stats()
        seen: set[str] = set()
        done = 0
        slot = 0
        # Invalid rows and duplicates are regenerated, within a budget, so a schema that admits
        # few distinct rows ends as an honest partial result instead of looping forever.
        budget = request.num_rows + max(64, request.num_rows)
        reason = ""
        with self._decode_lock:
            while done < request.num_rows:
                if cancelled():
                    reason = "cancelled"
                    break
                if slot >= budget:
                    reason = (
                        f"gave up after {slot} attempts: {stats.invalid} invalid rows, "
                        f"{stats.duplicates} duplicates (set keep_duplicates to allow repeats)"
                    )
                    break
                wave = list(range(slot, slot + min(self.batch_size, request.num_rows - done, budget - slot)))
                slot += len(wave)
                for finished in self._decode_wave(prepared, request, seed, wave, stats, cancelled):
                    accepted = []
                    for item in finished:
                        if done + len(accepted) >= request.num_rows:
                            break
                        row = self.parse_row(item.text, prepared) if item.text is not None else None
                        if row is None:
                            stats.invalid += 1
                            continue
                        stats.valid += 1
                        canonical = json.dumps(row, sort_keys=True, ensure_ascii=False)
                        if canonical in seen:
                            stats.duplicates += 1
                            if not request.keep_duplicates:
                                continue
                        seen.add(canonical)
                        accepted.append(json.dumps(row, ensure_ascii=False))
                    if accepted:
                        done += len(accepted)
                        yield RowBatch(accepted)
                    regenerated = stats.invalid + (0 if request.keep_duplicates else stats.duplicates)
                    yield RowProgress(done, request.num_rows, regenerated, stats.tokens)
        if not reason and done < request.num_rows:
            reason = "cancelled"
        yield RowSummary(
            rows_generated=done,
            rows_requested=request.num_rows,
            rows_invalid=stats.invalid,
            duplicates_removed=0 if request.keep_duplicates else stats.duplicates,
            # Distinct rows among the valid rows decoded: what the model produced, before removal.
            distinct_ratio=len(seen) / stats.valid if stats.valid else 1.0,
            seed=seed,
            elapsed_s=time.perf_counter() - started,
            tokens_generated=stats.tokens,
            tokens_forced=stats.forced,
            partial=done < request.num_rows,
            reason=reason,
            schema=prepared.schema,
        )

    def _decode_wave(
        self,
        prepared: PreparedSchema,
        request: RowRequest,
        seed: int,
        slots: list[int],
        stats: _Stats,
        cancelled: Callable[[], bool],
    ) -> Iterator[list[_Finished]]:
        """Decodes one wave of rows; yields, after every step, the rows that finished in it."""
        model, device = self.model, self.device
        n = len(slots)
        prompts = [build_prompt(self.tokenizer, prepared.schema, request.instructions, seed, s) for s in slots]
        # 1. Left-padded prefill of every prompt.
        width = max(len(p) for p in prompts)
        input_ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((n, width), dtype=torch.long)
        for i, prompt in enumerate(prompts):
            input_ids[i, width - len(prompt) :] = torch.tensor(prompt)
            attention[i, width - len(prompt) :] = 1
        input_ids, attention = input_ids.to(device), attention.to(device)
        generator = torch.Generator(device=device).manual_seed((seed * 1_000_003 + slots[0]) % 2**63)
        matchers = [xgr.GrammarMatcher(prepared.compiled) for _ in range(n)]
        outputs: list[list[int]] = [[] for _ in range(n)]
        pending: list[list[int]] = [[] for _ in range(n)]  # accepted but not yet fed to the model
        active = list(range(n))  # batch position -> wave row
        bitmask = xgr.allocate_token_bitmask(n, self.vocab_size)
        cache = _new_cache(model)
        with torch.inference_mode():
            positions = (attention.cumsum(-1) - 1).clamp(min=0)
            logits = model(
                input_ids=input_ids,
                attention_mask=attention,
                position_ids=positions,
                use_cache=True,
                logits_to_keep=1,
                **{self.cache_kwarg: cache},
            ).logits[:, -1, :]
            while active:
                if cancelled():
                    return
                # 2. Rows with nothing left to feed sample their next token. Their masks are
                # filled on the CPU while the forward pass that produced `logits` still runs.
                sampling = [j for j, r in enumerate(active) if not pending[r]]
                sampled: list[int] = []
                if sampling:
                    self.mask_filler.batch_fill_next_token_bitmask([matchers[active[j]] for j in sampling], bitmask)
                    rows_logits = logits[sampling] if len(sampling) < len(active) else logits
                    xgr.apply_token_bitmask_inplace(
                        rows_logits, bitmask[: len(sampling)].to(device, non_blocking=True), vocab_size=self.vocab_size
                    )
                    sampled = _sample(rows_logits, request.temperature, request.top_p, generator).tolist()
                # 3. Accept each sampled token, jump forward over what the grammar forces, and
                # retire rows that are complete or out of tokens.
                finished: list[_Finished] = []
                for j, token in zip(sampling, sampled):
                    r = active[j]
                    matcher = matchers[r]
                    stats.tokens += 1
                    if not matcher.accept_token(token):
                        finished.append(_Finished(slots[r], None, len(outputs[r])))
                        continue
                    outputs[r].append(token)
                    pending[r].append(token)
                    forced = "" if matcher.is_completed() else matcher.find_jump_forward_string()
                    if forced:
                        forced_ids = self.tokenizer.encode(forced, add_special_tokens=False)
                        matcher.accept_string(forced)
                        outputs[r].extend(forced_ids)
                        pending[r].extend(forced_ids)
                        stats.forced += len(forced_ids)
                    if matcher.is_completed():
                        text = self.tokenizer.decode(outputs[r], skip_special_tokens=True)
                        finished.append(_Finished(slots[r], text, len(outputs[r])))
                    elif len(outputs[r]) >= request.max_new_tokens:
                        finished.append(_Finished(slots[r], None, len(outputs[r])))
                if finished:
                    yield finished
                    gone = {f.slot for f in finished}
                    keep = [j for j, r in enumerate(active) if slots[r] not in gone]
                    if not keep:
                        return
                    index = torch.tensor(keep, device=device)
                    cache.batch_select_indices(index)
                    attention = attention.index_select(0, index)
                    active = [active[j] for j in keep]
                # 4. Next forward: each row feeds up to `feed_width` of its pending tokens,
                # right-padded to the widest row; padding is masked out of attention.
                feeds = [pending[r][: self.feed_width] for r in active]
                for r, feed in zip(active, feeds):
                    del pending[r][: len(feed)]
                step = max(len(f) for f in feeds)
                step_ids = torch.full((len(feeds), step), self.pad_id, dtype=torch.long)
                step_mask = torch.zeros((len(feeds), step), dtype=torch.long)
                for j, feed in enumerate(feeds):
                    step_ids[j, : len(feed)] = torch.tensor(feed)
                    step_mask[j, : len(feed)] = 1
                attention = torch.cat([attention, step_mask.to(device)], dim=1)
                positions = (attention.cumsum(-1) - 1).clamp(min=0)[:, -step:]
                out = model(
                    input_ids=step_ids.to(device),
                    attention_mask=attention,
                    position_ids=positions,
                    use_cache=True,
                    logits_to_keep=step,
                    **{self.cache_kwarg: cache},
                ).logits
                last = torch.tensor([len(f) - 1 for f in feeds], device=device)
                logits = out[torch.arange(len(feeds), device=device), last]


def _new_cache(model):
    from transformers import DynamicCache

    return DynamicCache(config=model.config)


# Nucleus sampling looks at the best TOP_K tokens only: a full-vocabulary sort every step costs
# more than the rest of sampling together, and the mass beyond the top 64 is negligible.
TOP_K = 64


def _sample(logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator) -> torch.Tensor:
    """Temperature and nucleus sampling, one token per row, reproducible through `generator`.

    Uses the exponential-race form of categorical sampling (argmax of p / E with E ~ Exp(1)),
    which needs one random draw per candidate and no cumulative sums."""
    scores = logits.float() / temperature
    candidates = None
    if top_p < 1.0:
        scores, candidates = scores.topk(min(TOP_K, scores.shape[-1]), dim=-1)
        probs = scores.softmax(dim=-1)
        # Drop a token once the mass before it already exceeds top_p; the best token always stays.
        drop = probs.cumsum(dim=-1) - probs > top_p
        scores = scores.masked_fill(drop, float("-inf"))
    probs = scores.softmax(dim=-1)
    race = torch.empty_like(probs).exponential_(generator=generator)
    choice = (probs / race).argmax(dim=-1)
    if candidates is not None:
        choice = candidates.gather(-1, choice.unsqueeze(-1)).squeeze(-1)
    return choice.cpu()
