"""The decode loops behind TextEngine: one wave of rows, decoded together under their grammar.

Both loops share WaveRows, the per-row bookkeeping: grammar matchers, masks, sampling,
jump-forward and retirement. They differ in how they drive the model:

- DynamicDecoder (eager; the CPU default): a growing DynamicCache; rows that finish leave the
  batch, and a row may feed several jump-forward tokens in one step.
- StaticDecoder (the CUDA default): fixed shapes throughout (a StaticCache sized for the wave, one
  token per row per step, finished rows feed masked padding), so the decode step can be compiled
  with CUDA graphs (`torch.compile(mode="reduce-overhead")`). Forced tokens still skip masking and
  sampling; they are fed one per step. Step t+1 is queued with step t's sampled tokens while they
  are still on the device, so the CPU accepts them and fills the next masks while the GPU runs
  it; each step attends over the filled part of the cache only (`attend_limit`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import torch
import xgrammar as xgr

from sdg.devices import allow_recompiles, to_device
from sdg.given import GivenRow
from text_service.attention import kv_limit
from text_service.bounds import StringBounds
from text_service.cursor import CLOSE_IF_ABLE, RowCursor
from text_service.prompts import WavePrompts

log = logging.getLogger(__name__)

# Nucleus sampling looks at the best TOP_K tokens only: a full-vocabulary sort every step costs
# more than the rest of sampling together, and the mass beyond the top 64 is negligible.
TOP_K = 64
# Static caches are sized in multiples of this, so waves with similar prompts reuse one graph.
STATIC_CACHE_QUANTUM = 256
# Static batches are padded up to one of these (or to the engine's batch size, if smaller).
STATIC_BATCH_BUCKETS = (16, 64, 256)


def static_batch_size(rows: int, batch_size: int) -> int:
    """The fixed batch a wave of `rows` rows decodes in: the smallest bucket that holds it, or the
    engine's batch size when that is smaller. Full waves are never padded; a small wave (a short
    job, or the last wave of a long one) runs at most 4x its rows, 16 rows at the least."""
    return min(next((b for b in STATIC_BATCH_BUCKETS if b >= rows), batch_size), max(batch_size, rows))


@dataclass(frozen=True)
class DecodeParts:
    """What the decode loops use of TextEngine: its model and tokenizer, and what it built for them."""

    model: Any  # a transformers causal LM
    tokenizer: Any
    device: torch.device
    vocab_size: int
    pad_id: int
    batch_size: int  # the most rows a wave decodes
    string_bounds: StringBounds
    mask_filler: xgr.BatchGrammarMatcher
    cache_kwarg: str  # the forward's cache argument: `cache`, or `past_key_values` before transformers renamed it
    _forced: dict[str, list[int]] = field(default_factory=dict, init=False, repr=False, compare=False)

    def forced_ids(self, text: str) -> list[int]:
        """Token ids for a jump-forward string. The same few strings (keys, separators) come back
        every row, and tokenizing costs more than the rest of a row's per-step bookkeeping."""
        ids = self._forced.get(text)
        if ids is None:
            ids = self.tokenizer.encode(text, add_special_tokens=False)
            if len(self._forced) < 65536:
                self._forced[text] = ids
        return list(ids)

    def forward(self, input_ids, attention_mask, position_ids, cache, keep: int, **kwargs) -> torch.Tensor:
        """One eager forward pass; returns the logits of the last `keep` positions."""
        return self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=True,
            logits_to_keep=keep,
            **{self.cache_kwarg: cache},
            **kwargs,
        ).logits


@dataclass
class Finished:
    """A row slot that left the decode loop: its text, or None when it ran out of tokens (ran_out)
    or the grammar refused its token."""

    slot: int
    text: str | None
    tokens: int = 0
    ran_out: bool = False
    timed_out: bool = False
    sample_failed: bool = False  # a sampled value could not be written into the row


@dataclass
class DecodeStats:
    tokens: int = 0
    forced: int = 0
    invalid: int = 0
    cut_off: int = 0  # of the invalid: rows that ran out of tokens before they closed
    duplicates: int = 0
    valid: int = 0
    # Where a decode's wall time went (seconds), for the bench: host work before the first step
    # (prompts, inputs, queuing the prefill); filling grammar masks; masking and sampling, which
    # waits for the GPU (the prefill and each step's forward pass); per-row bookkeeping; launching
    # decode steps (host time: dynamo guards, graph replay); and checking finished rows (parse,
    # jsonschema, duplicates). The rest is host work between them.
    prepare_s: float = 0.0
    fill_s: float = 0.0
    sample_s: float = 0.0
    accept_s: float = 0.0
    launch_s: float = 0.0
    check_s: float = 0.0
    steps: int = 0


@dataclass(frozen=True)
class Sampling:
    temperature: float
    top_p: float
    max_new_tokens: int
    optional_rate: float = 0.5  # the share of each optional property's rows that leave it out
    row_time_limit_s: float = 120.0  # a wave's rows that take longer are given up
    # The tokens row plans keep each row within; unbounded when the longest row fits anyway.
    row_budget: int = 1 << 30


def row_seed(seed: int, slot: int) -> int:
    """The seed of one row's plan: the job seed and the row's slot decide it."""
    return seed * 1_000_003 + slot + 1


class WaveRows:
    """Per-row state of one wave: what each row has produced, what it still has to feed the model,
    its grammar matcher and its cursor (string limits and the row plan)."""

    def __init__(self, parts: DecodeParts, prepared, slots: list[int], sampling: Sampling, stats: DecodeStats, seed: int = 0,
                 given: list[GivenRow] | None = None):
        self.parts = parts
        self.slots = slots
        self.sampling = sampling
        self.stats = stats
        n = len(slots)
        self.matchers = [xgr.GrammarMatcher(prepared.compiled) for _ in range(n)]
        samplers = prepared.read.samplers
        self.cursors = [
            RowCursor(parts.string_bounds, prepared.index, sampling.row_budget, row_seed(seed, slot), sampling.optional_rate,
                      {**(samplers.texts(seed, slot) if samplers else {}), **(given[i].texts if given else {})},
                      frozenset(given[i].texts) if given else frozenset())
            for i, slot in enumerate(slots)
        ]
        self.outputs: list[list[int]] = [[] for _ in range(n)]
        self.pending: list[list[int]] = [[] for _ in range(n)]  # accepted, not yet fed to the model
        self.bitmask = xgr.allocate_token_bitmask(n, parts.vocab_size)
        self.filled: list[int] = []  # the rows whose masks were filled last, in bitmask order
        self._limits: list[int | None] = []
        self._plans: list[tuple | None] = []
        self.started = time.perf_counter()
        if parts.device.type == "cuda":
            # Pinned, so the copy to the GPU is truly asynchronous; the loops wait for each step's
            # sampled tokens, queued after the copy, before the next fill rewrites it.
            self.bitmask = self.bitmask.pin_memory()
        # What the grammar and the plan write before the first sampled token; a schema whose
        # values are all forced completes rows right here.
        self.early: list[Finished] = []
        self.closed: set[int] = set()  # rows handed over before they sampled: they never sample
        for r in range(n):
            done = self._force(r)
            if done is not None:
                self.early.append(done)
                self.pending[r].clear()
                self.closed.add(r)

    def take_early(self) -> list[Finished]:
        """The rows that were complete before any token was sampled (each is handed over once)."""
        early, self.early = self.early, []
        return early

    def fill(self, rows: list[int]) -> None:
        """Fills the grammar masks of `rows`, the rows that sample next (in that order), and notes
        their string limits. The static loop calls this while the GPU runs the forward pass."""
        started = time.perf_counter()
        self.filled = rows
        if rows:
            self.parts.mask_filler.batch_fill_next_token_bitmask([self.matchers[r] for r in rows], self.bitmask)
        self._limits = [self.cursors[r].limit() for r in rows]
        for j, limit in enumerate(self._limits):
            if limit == CLOSE_IF_ABLE:  # out of room: close the string now if its grammar lets it
                self._limits[j] = 0 if self.parts.string_bounds.closes(self.bitmask, j) else None
        self._plans = [self.cursors[r].plan_situation() for r in rows]
        self.stats.fill_s += time.perf_counter() - started

    def sample(self, logits: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Masks `logits` in place (row j belongs to filled row j) and samples one token per row.
        Queued on the device; the tokens stay there."""
        parts = self.parts
        mask = self.bitmask[: len(self.filled)].to(logits.device, non_blocking=True)
        xgr.apply_token_bitmask_inplace(logits, mask, vocab_size=parts.vocab_size)
        parts.string_bounds.mask_(logits, self._limits)
        parts.string_bounds.ban_(logits, self._plans)
        self.stats.steps += 1
        return sample(logits, self.sampling.temperature, self.sampling.top_p, generator)

    def accept(self, tokens: list[int], fed: bool) -> list[Finished]:
        """Accepts each filled row's sampled token and jumps forward; returns the rows that
        finished. `fed`: the sampled tokens already went into the model (the static loop feeds
        them before accepting), so only jump-forward tokens stay pending."""
        started = time.perf_counter()
        # One call into xgrammar for the whole batch, instead of one per row.
        accepted = xgr.BatchGrammarMatcher.batch_accept_token([self.matchers[r] for r in self.filled], tokens)
        self.stats.tokens += len(tokens)
        finished = []
        for r, token, ok in zip(self.filled, tokens, accepted):
            done = self._accept(r, token, ok, fed)
            if done is not None:
                finished.append(done)
        self.stats.accept_s += time.perf_counter() - started
        return finished

    def step(self, logits: torch.Tensor, rows: list[int], generator: torch.Generator) -> list[Finished]:
        """Fill, sample and accept in one go, for the rows in `rows` (logits[j] belongs to rows[j])
        that have nothing pending; returns the rows that finished."""
        sampling_pos = [j for j, r in enumerate(rows) if not self.pending[r] and r not in self.closed]
        if not sampling_pos:
            return []
        self.fill([rows[j] for j in sampling_pos])
        started = time.perf_counter()
        selected = logits if len(sampling_pos) == len(rows) else logits[to_device(sampling_pos, torch.int64, logits.device)]
        tokens = self.sample(selected, generator).tolist()
        self.stats.sample_s += time.perf_counter() - started
        return self.accept(tokens, fed=False)

    def _accept(self, r: int, token: int, accepted: bool, fed: bool) -> Finished | None:
        """Books one row's sampled token, which its matcher has already taken (or refused)."""
        outputs = self.outputs[r]
        if not accepted:
            return Finished(self.slots[r], None, len(outputs))
        outputs.append(token)
        if not fed:
            self.pending[r].append(token)
        cursor = self.cursors[r]
        cursor.tokens = len(outputs)
        cursor.feed_token(token)
        # Most sampled tokens land inside a plain string value, where the grammar forces nothing
        # and the row cannot be complete: skip both questions to the matcher.
        if not cursor.in_free_string():
            done = self._force(r)
            if done is not None:
                return done
        if len(outputs) >= self.sampling.max_new_tokens:
            return Finished(self.slots[r], None, len(outputs), ran_out=True)
        if time.perf_counter() - self.started > self.sampling.row_time_limit_s:
            return Finished(self.slots[r], None, len(outputs), timed_out=True)
        return None

    def _force(self, r: int) -> Finished | None:
        """Writes what the plan and then the grammar force for row r; returns the row if that
        completes it. xgrammar's jump-forward is already the longest forced text, so only a
        plan choice it opens can force more."""
        matcher, cursor, outputs = self.matchers[r], self.cursors[r], self.outputs[r]
        for _ in range(64):
            if cursor.sample_failed:
                return Finished(self.slots[r], None, len(outputs), sample_failed=True)
            if matcher.is_completed():
                text = self.parts.tokenizer.decode(outputs, skip_special_tokens=True)
                return Finished(self.slots[r], text, len(outputs))
            forced = cursor.plan_text()
            value = cursor.forcing_value()
            if forced and not matcher.accept_string(forced):
                if value:  # a sampled value the grammar refuses: never left to the model
                    return Finished(self.slots[r], None, len(outputs), sample_failed=True)
                cursor.abandon()  # the grammar does not allow the plan here: the model chooses
                continue
            if not forced:
                forced = jump_forward(matcher)
                if not forced:
                    return None
                matcher.accept_string(forced)
            # Sampled values are one-off texts: kept out of the cache of recurring ones.
            forced_ids = self.parts.tokenizer.encode(forced, add_special_tokens=False) if value else self.parts.forced_ids(forced)
            outputs.extend(forced_ids)
            self.pending[r].extend(forced_ids)
            self.stats.forced += len(forced_ids)
            cursor.tokens = len(outputs)
            cursor.feed_bytes(forced.encode())
            # After a sampled value, the grammar may force more (the row's end, say).
            if cursor.choice is None and not value and cursor.value is None and not cursor.sample_failed and not matcher.is_completed():
                return None
        return None

    def take_feed(self, r: int, width: int) -> list[int]:
        feed = self.pending[r][:width]
        del self.pending[r][:width]
        return feed


def jump_forward(matcher) -> str:
    """The text the grammar forces next, up to the last whole character: "ä" and "ö" share their
    first UTF-8 byte, and xgrammar cannot hand Python a str that ends in half of one. Sampling
    takes the rest."""
    try:
        return matcher.find_jump_forward_string()
    except UnicodeDecodeError as err:
        return err.object[: err.start].decode()


def prefill_prefix(parts: DecodeParts, prefix: list[int]):
    """Runs the wave's shared prompt prefix once, at batch 1; returns its DynamicCache."""
    from transformers import DynamicCache

    cache = DynamicCache(config=parts.model.config)
    ids = torch.tensor([prefix], device=parts.device)
    parts.forward(ids, torch.ones_like(ids), torch.arange(len(prefix), device=parts.device)[None], cache, keep=1)
    return cache


def layer_kv(cache) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each layer's (keys, values) of a DynamicCache, across transformers' cache layouts."""
    if hasattr(cache, "layers"):
        return [(layer.keys, layer.values) for layer in cache.layers]
    return list(zip(cache.key_cache, cache.value_cache))


def left_padded(prompts: list[list[int]], pad_id: int, width: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    width = width or max(len(p) for p in prompts)
    # Padded as Python lists and converted once: a tensor per row cost 14 ms per 1,024 rows.
    ids = torch.tensor([[pad_id] * (width - len(p)) + p for p in prompts], dtype=torch.long)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], dtype=torch.long)
    return ids, mask


class DynamicDecoder:
    def __init__(self, parts: DecodeParts, feed_width: int):
        self.parts = parts
        self.feed_width = feed_width

    def decode(
        self, rows: WaveRows, prompts: WavePrompts, generator: torch.Generator, cancelled: Callable[[], bool]
    ) -> Iterator[list[Finished]]:
        parts = self.parts
        device = parts.device
        n = len(prompts.suffixes)
        cache = prefill_prefix(parts, prompts.prefix)
        cache.batch_repeat_interleave(n)
        suffix_ids, suffix_mask = (t.to(device) for t in left_padded(prompts.suffixes, parts.pad_id))
        attention = torch.cat([torch.ones((n, len(prompts.prefix)), dtype=torch.long, device=device), suffix_mask], 1)
        positions = (attention.cumsum(-1) - 1).clamp(min=0)[:, -suffix_ids.shape[1] :]
        logits = parts.forward(suffix_ids, attention, positions, cache, keep=1)[:, -1]
        active = list(range(n))  # batch position -> wave row
        early = rows.take_early()
        while True:
            if cancelled():
                return
            finished = early + rows.step(logits, active, generator)
            early = []
            if finished:
                yield finished
                gone = {f.slot for f in finished}
                keep = [j for j, r in enumerate(active) if rows.slots[r] not in gone]
                if not keep:
                    return
                # Finished rows leave the batch, so later steps pay only for rows still running.
                index = torch.tensor(keep, device=device)
                cache.batch_select_indices(index)
                attention = attention.index_select(0, index)
                active = [active[j] for j in keep]
            # Each row feeds up to `feed_width` pending tokens, right-padded to the widest row;
            # the padding is masked out of attention.
            feeds = [rows.take_feed(r, self.feed_width) for r in active]
            width = max(len(f) for f in feeds)
            # Built as Python lists and converted once: a tensor per row costs more than the step.
            step_ids = torch.tensor([f + [parts.pad_id] * (width - len(f)) for f in feeds])
            step_mask = torch.tensor([[1] * len(f) + [0] * (width - len(f)) for f in feeds])
            attention = torch.cat([attention, step_mask.to(device)], dim=1)
            positions = (attention.cumsum(-1) - 1).clamp(min=0)[:, -width:]
            launched = time.perf_counter()
            out = parts.forward(step_ids.to(device), attention, positions, cache, keep=width)
            rows.stats.launch_s += time.perf_counter() - launched
            last = torch.tensor([len(f) - 1 for f in feeds], device=device)
            logits = out[torch.arange(len(feeds), device=device), last]


def in_quanta(positions: int) -> int:
    """`positions` rounded up to whole STATIC_CACHE_QUANTUM."""
    return -(-positions // STATIC_CACHE_QUANTUM) * STATIC_CACHE_QUANTUM


def attend_limit(positions: int, length: int) -> int:
    """How far a static step attends: the first cache quantum that holds `positions` filled
    positions. Each limit is a graph of its own; decode time grows with it, and rows usually
    finish long before a wave's cache, sized for its longest possible row, is full."""
    return min(length, in_quanta(positions))


class StaticDecoder:
    def __init__(self, parts: DecodeParts, compile_step: bool):
        self.parts = parts
        self.compile_step = compile_step
        self._step = None
        # CUDA graph trees keep their state per thread: replaying graphs from a thread other than
        # the one that recorded them fails (an assertion, or on an H200 a segfault). The service
        # runs each request in a thread of its own, so every compiled step runs on this one.
        self._graph_thread = ThreadPoolExecutor(1, thread_name_prefix="sdg-cuda-graphs") if compile_step else None
        self._cache = None
        self._cache_shape: tuple[int, int] | None = None

    def _cache_for(self, rows: int, length: int):
        """A StaticCache of this shape, reused across waves: CUDA graphs are recorded against the
        cache's fixed addresses, so a new cache per wave would mean a new recording per wave."""
        from transformers import StaticCache

        if self._cache_shape == (rows, length):
            self._cache.reset()
        else:
            self._cache = None  # free the old one before allocating
            self._cache = StaticCache(config=self.parts.model.config, max_cache_len=length)
            self._cache_shape = (rows, length)
        return self._cache

    def _step_fn(self):
        if self._step is None:
            forward = self.parts.model.forward
            # reduce-overhead captures the step in CUDA graphs; shapes stay fixed within a wave,
            # and caches are sized in quanta so most waves reuse a captured graph.
            if self.compile_step:
                allow_recompiles(64)  # one compilation per (batch bucket, cache length, limit)
            self._step = torch.compile(forward, mode="reduce-overhead", dynamic=False) if self.compile_step else forward
        return self._step

    def warm_up_limits(self) -> None:
        """Compiles and records the step of the last wave's shape at every attention limit the
        wave did not reach, so a later job with longer rows does not stall on a compilation.
        The dummy steps write into the cache, which the next wave resets."""
        if self._cache is None:
            return
        batch, length = self._cache_shape
        device = self.parts.device
        # Inputs made in inference mode, as the decode loop's are: dynamo guards on it.
        with torch.inference_mode():
            attention = torch.zeros((batch, length), dtype=torch.long, device=device)
            attention[:, 0] = 1
            for limit in range(STATIC_CACHE_QUANTUM, length + 1, STATIC_CACHE_QUANTUM):
                for _ in range(3):  # dynamo compiles, then CUDA graph trees warm up and record
                    self._launch(torch.full((batch,), self.parts.pad_id, device=device), attention,
                                 torch.zeros(batch, dtype=torch.long, device=device), 0, limit)

    def _launch(self, feed: torch.Tensor, attention: torch.Tensor, positions: torch.Tensor, slot: int, limit: int) -> torch.Tensor:
        """Queues one decode step (a token per row, written at cache slot `slot`, attending over
        the first `limit` positions); returns the last position's logits (still being computed)."""
        inputs = dict(
            input_ids=feed.unsqueeze(-1),
            attention_mask=attention,
            position_ids=positions.unsqueeze(-1),
            cache_position=to_device([slot], torch.int64, self.parts.device),
            use_cache=True,
            logits_to_keep=1,
            **{self.parts.cache_kwarg: self._cache},
        )
        step = self._step_fn()

        def run() -> torch.Tensor:
            with kv_limit(limit):
                return step(**inputs).logits[:, -1]

        return self._call(run)

    def _call(self, fn: Callable[[], torch.Tensor]) -> torch.Tensor:
        """Runs `fn` on the graph thread (in inference mode, which is thread-local), or inline
        where nothing is compiled. The prefill runs there too: torch keeps cuDNN's attention
        plans per thread, and the service calls from a thread per request."""
        if self._graph_thread is None:
            return fn()

        def on_graph_thread() -> torch.Tensor:
            with torch.inference_mode():
                return fn()

        return self._graph_thread.submit(on_graph_thread).result()

    def decode(
        self, rows: WaveRows, prompts: WavePrompts, generator: torch.Generator, cancelled: Callable[[], bool]
    ) -> Iterator[list[Finished]]:
        began = time.perf_counter()
        parts = self.parts
        device = parts.device
        n = len(prompts.suffixes)
        # The batch is padded to a bucket: each (batch, cache length) shape is compiled and its
        # graphs recorded once, so jobs of 10, 11 and 12 rows must not make three of them.
        batch = static_batch_size(n, parts.batch_size)
        shared = len(prompts.prefix)
        suffix_ids, suffix_mask = left_padded(prompts.suffixes + [[parts.pad_id]] * (batch - n), parts.pad_id)
        suffix_mask[n:] = 0  # padding rows see the shared prefix only, and never sample
        width = shared + suffix_ids.shape[1]
        steps = rows.sampling.max_new_tokens + 1
        length = in_quanta(width + steps)
        cache = self._cache_for(batch, length)
        attention = torch.zeros((batch, length), dtype=torch.long, device=device)
        attention[:, :shared] = 1
        attention[:, shared:width] = suffix_mask.to(device)
        positions = (attention[:, :width].cumsum(-1) - 1).clamp(min=0)[:, shared:]

        def prefill() -> torch.Tensor:
            # The shared prefix is computed once and copied into every row's slots of the cache.
            positions_so_far = torch.arange(shared, device=device)
            for layer, (keys, values) in enumerate(layer_kv(prefill_prefix(parts, prompts.prefix))):
                cache.update(
                    keys.expand(batch, -1, -1, -1).contiguous(),
                    values.expand(batch, -1, -1, -1).contiguous(),
                    layer,
                    {"cache_position": positions_so_far},
                )
            with kv_limit(attend_limit(width, length)):
                return parts.forward(
                    suffix_ids.to(device), attention[:, :width], positions, cache, keep=1,
                    cache_position=torch.arange(shared, width, device=device),
                )[:, -1]

        logits = self._call(prefill)
        next_position = attention[:, :width].sum(-1)  # each row's next RoPE position
        live = [True] * n + [False] * (batch - n)
        pending = rows.pending
        cuda = device.type == "cuda"
        # Host buffers for each step's sampled tokens: pinned, so the copy queues behind the
        # kernels without stalling the host.
        sampled_host = torch.empty(batch, dtype=torch.long, pin_memory=cuda)
        sampled_ready = torch.cuda.Event() if cuda else None
        rows.stats.prepare_s += time.perf_counter() - began
        early = rows.take_early()
        if early:
            yield early
            gone = {f.slot for f in early}
            live = [live[r] and (r >= n or rows.slots[r] not in gone) for r in range(batch)]
            if not any(live):
                return
        rows.fill([r for r in range(n) if live[r] and not pending[r]])  # while the prefill runs
        for t in range(steps):
            if cancelled():
                return
            # Every live row feeds one token: a jump-forward token still pending, or the token it
            # samples now. Finished and padding rows feed padding that attention ignores.
            sampling = rows.filled
            feed_list = [pending[r].pop(0) if live[r] and pending[r] else parts.pad_id for r in range(n)]
            feed_list += [parts.pad_id] * (batch - n)
            started = time.perf_counter()
            feed = to_device(feed_list, torch.int64, device)
            if sampling:
                everyone_samples = len(sampling) == batch
                index = None if everyone_samples else to_device(sampling, torch.int64, device)
                tokens = rows.sample(logits if everyone_samples else logits[index], generator)
                if everyone_samples:
                    feed = tokens
                else:
                    feed.index_copy_(0, index, tokens)
                sampled_host[: len(sampling)].copy_(tokens, non_blocking=True)
                if cuda:
                    sampled_ready.record()
            fed = to_device(live, torch.long, device)
            slot = width + t
            attention[:, slot] = fed
            # The next step is queued before this one's tokens are accepted: the GPU runs it
            # while the CPU does the per-row bookkeeping and fills the next masks.
            launched = time.perf_counter()
            logits = self._launch(feed, attention, next_position, slot, attend_limit(slot + 1, length))
            waiting = time.perf_counter()
            rows.stats.launch_s += waiting - launched
            next_position = next_position + fed
            if sampling:
                if cuda:
                    sampled_ready.synchronize()
                tokens = sampled_host[: len(sampling)].tolist()
                # Queuing the sampling, and waiting for its tokens (and for the GPU to get there).
                rows.stats.sample_s += (launched - started) + (time.perf_counter() - waiting)
                finished = rows.accept(tokens, fed=True)
                if finished:
                    yield finished
                    gone = {f.slot for f in finished}
                    for r in range(n):
                        if rows.slots[r] in gone:
                            live[r] = False
                    if not any(live):
                        return
            rows.fill([r for r in range(n) if live[r] and not pending[r]])


def sample(logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator) -> torch.Tensor:
    """Temperature and nucleus sampling, one token per row, reproducible through `generator`.

    Uses the exponential-race form of categorical sampling (argmax of p / E with E ~ Exp(1)),
    which needs one random draw per candidate and no cumulative sums."""
    candidates = None
    if top_p < 1.0:
        # Top-k on the logits as they are (bf16 on a GPU), then float: dividing by a positive
        # temperature keeps the order, and it spares two float passes over the whole vocabulary.
        scores, candidates = logits.topk(min(TOP_K, logits.shape[-1]), dim=-1)
        scores = scores.float() / temperature
        probs = scores.softmax(dim=-1)
        # Drop a token once the mass before it already exceeds top_p; the best token always stays.
        drop = probs.cumsum(dim=-1) - probs > top_p
        scores = scores.masked_fill(drop, float("-inf"))
    else:
        scores = logits.float() / temperature
    probs = scores.softmax(dim=-1)
    race = torch.empty_like(probs).exponential_(generator=generator)
    choice = (probs / race).argmax(dim=-1)
    if candidates is not None:
        choice = candidates.gather(-1, choice.unsqueeze(-1)).squeeze(-1)
    return choice
