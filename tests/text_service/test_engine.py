"""TextEngine on the random-weight tiny model, the adversary: every row it writes must be valid."""

import json
import math
import os

import pytest

from text_service.engine import RequestError, RowBatch, RowProgress, RowRequest, RowSummary
from tests.text_service.schemas import EVERY_TYPE, SEED_SCHEMA

# 10,000 in the benchmark (bench/text_bench.py --validity 10000); fewer here to keep CI quick.
VALIDITY_ROWS = int(os.environ.get("SDG_TEST_VALIDITY_ROWS", "1500"))


def run(engine, **kwargs):
    rows, progress = [], []

    def emit(event):
        if isinstance(event, RowBatch):
            rows.extend(event.rows)
        else:
            assert isinstance(event, RowProgress)
            progress.append(event)

    summary = engine.generate(RowRequest(**kwargs), emit)
    assert isinstance(summary, RowSummary)
    return rows, progress, summary


def assert_clean(value):
    """Values that load without surprise: finite numbers, strings without control characters."""
    if isinstance(value, float):
        assert math.isfinite(value)
    elif isinstance(value, str):
        assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in value), repr(value)
    elif isinstance(value, dict):
        for item in value.values():
            assert_clean(item)
    elif isinstance(value, list):
        for item in value:
            assert_clean(item)


def test_every_row_is_valid_by_construction(text_engine):
    prepared = text_engine.prepare(EVERY_TYPE)
    rows, progress, summary = run(text_engine, schema=EVERY_TYPE, num_rows=VALIDITY_ROWS, seed=7)
    assert len(rows) == VALIDITY_ROWS == summary.rows_generated
    assert not summary.partial
    for text in rows:
        row = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
        assert prepared.validator.is_valid(row), text
        assert list(row) == list(EVERY_TYPE)
        assert_clean(row)
    assert len(set(rows)) == len(rows), "duplicates are removed by default"
    assert 0 < summary.distinct_ratio <= 1
    # The grammar makes invalid rows rare; they are counted when they happen, never kept.
    assert summary.rows_invalid <= VALIDITY_ROWS // 20
    assert summary.tokens_forced > 0, "jump-forward skipped no tokens"
    assert progress[-1].rows_done == VALIDITY_ROWS


def test_non_ascii_names_and_characters_that_share_their_first_byte(text_engine):
    # "ä", "ö" and "ü" all begin with byte 0xC3: the grammar forces half a character.
    schema = {"café": "string", "名前": "int", "umlaut": {"type": "string", "pattern": "^[äöü]{2,5}$"}}
    prepared = text_engine.prepare(schema)
    rows, _, summary = run(text_engine, schema=schema, num_rows=20, seed=3)
    assert len(rows) == 20 and not summary.partial, summary
    for text in rows:
        row = json.loads(text)
        assert prepared.validator.is_valid(row) and list(row) == list(schema), text


def test_same_seed_same_rows_and_other_seed_other_rows(text_engine):
    first, _, s1 = run(text_engine, schema=SEED_SCHEMA, num_rows=12, seed=42)
    again, _, _ = run(text_engine, schema=SEED_SCHEMA, num_rows=12, seed=42)
    other, _, _ = run(text_engine, schema=SEED_SCHEMA, num_rows=12, seed=43)
    assert first == again
    assert first != other
    assert s1.seed == 42


def test_seed_is_drawn_and_reported_when_absent(text_engine):
    _, _, summary = run(text_engine, schema=SEED_SCHEMA, num_rows=2)
    # Drawn as the gateway and the image service draw theirs: exact as a JSON number.
    assert 0 < summary.seed < 2**53


def test_a_schema_with_few_distinct_rows_ends_partial_not_looping(text_engine):
    rows, _, summary = run(text_engine, schema={"flag": "bool"}, num_rows=5, seed=1)
    assert len(rows) == 2 and sorted(rows) == ['{"flag": false}', '{"flag": true}']
    assert summary.partial and "keep_duplicates" in summary.reason
    assert summary.duplicates_removed > 0


def test_rows_longer_than_the_token_limit_end_partial_and_say_so(text_engine):
    schema = {"s": {"type": "string", "minLength": 40, "maxLength": 48}}
    rows, _, summary = run(text_engine, schema=schema, num_rows=1, seed=1, max_new_tokens=8)
    assert rows == [] and summary.partial
    # None of the first rows fit, so the call stops early rather than trying the whole budget.
    assert summary.reason == "gave up after 35 attempts: 35 invalid rows, 0 duplicates (35 rows ran past the 8-token row limit: fewer or shorter fields fit)"


def test_keep_duplicates_allows_repeats(text_engine):
    rows, _, summary = run(text_engine, schema={"flag": "bool"}, num_rows=6, seed=1, keep_duplicates=True)
    assert len(rows) == 6 and not summary.partial
    assert summary.distinct_ratio == pytest.approx(2 / 6)


def test_cancellation_stops_and_marks_partial(text_engine):
    calls = []

    def cancelled():
        calls.append(1)
        return len(calls) > 5

    summary = text_engine.generate(RowRequest(schema=EVERY_TYPE, num_rows=500, seed=3), cancelled=cancelled)
    assert summary.partial and summary.reason == "cancelled"
    assert summary.rows_generated < 500


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_rows": 0}, "num_rows"),
        ({"num_rows": 2_000_000}, "num_rows: must be between 1 and 1000000"),
        ({"num_rows": 1, "temperature": 0}, "temperature"),
        ({"num_rows": 1, "top_p": 1.5}, "top_p"),
        ({"num_rows": 1, "instructions": "x" * 4001}, "instructions: at most 4000 characters, got 4001"),
    ],
)
def test_bad_requests_name_the_field(text_engine, kwargs, message):
    with pytest.raises(RequestError, match=message):
        text_engine.check_request(RowRequest(schema=SEED_SCHEMA, **kwargs))


def test_a_prompt_or_row_past_the_models_context_is_refused_before_decoding(text_engine):
    context = text_engine.model.config.max_position_embeddings  # 4096 for the tiny model
    long_strings = {f"text_{i}": {"type": "string", "maxLength": 512} for i in range(16)}
    with pytest.raises(RequestError, match=f"max_new_tokens: a row may take {2 * context} tokens, but its prompt .* of the model's context of {context}"):
        text_engine.check_request(RowRequest(schema=long_strings, num_rows=1, max_new_tokens=2 * context))
    # The field list is cut at MAX_FIELD_TEXT characters; 2 tokens each with the tiny tokenizer.
    described = {f"field_{i}": {"type": "integer", "description": "é" * 400} for i in range(64)}
    with pytest.raises(RequestError, match=f"schema_json: a row's prompt takes about [0-9]+ tokens, past the model's context of {context}"):
        text_engine.check_request(RowRequest(schema=described, num_rows=1, max_new_tokens=1024))
    with pytest.raises(RequestError, match=f"schema_json: a row's prompt takes about [0-9]+ tokens"):
        text_engine.check_request(RowRequest(schema=described, num_rows=1, max_new_tokens=1024, instructions="short"))
    wordy = "é" * 4000  # within 4000 characters, but 8000 tokens with the tiny tokenizer
    with pytest.raises(RequestError, match=f"instructions: a row's prompt takes about [0-9]+ tokens"):
        text_engine.check_request(RowRequest(schema=SEED_SCHEMA, num_rows=1, instructions=wordy))
    text_engine.check_request(RowRequest(schema=long_strings, num_rows=1))  # 512 new tokens fit


def test_grammar_is_compiled_once_per_schema(text_engine):
    assert text_engine.prepare(SEED_SCHEMA) is text_engine.prepare(dict(SEED_SCHEMA))


def test_static_decoder_matches_the_dynamic_one(text_engine):
    """The fixed-shape loop (StaticCache, one token per row per step; CUDA graphs on a GPU) must
    compute what the eager loop computes: same seed, same rows."""
    from text_service.server import load_engine
    from text_service.settings import TextSettings
    from tests.conftest import TEST_MODEL_CACHE

    static = load_engine(TextSettings(model="tiny", model_cache_dir=TEST_MODEL_CACHE, device="cpu", decode="static"))
    assert static.decode_mode == "static" and text_engine.decode_mode == "dynamic"
    assert text_engine.decoder.feed_width == 1
    ours, _, s1 = run(static, schema=EVERY_TYPE, num_rows=24, seed=5)
    theirs, _, s2 = run(text_engine, schema=EVERY_TYPE, num_rows=24, seed=5)
    assert ours == theirs
    assert s1.tokens_forced == s2.tokens_forced > 0
    assert static.decoder._cache_shape[0] == 64  # 24 rows ran in the 64-row bucket: 40 padding rows
    # Warming up the other attention limits runs dummy steps in the cache; the next wave resets it.
    static.decoder.warm_up_limits()
    assert run(static, schema=EVERY_TYPE, num_rows=24, seed=5)[0] == ours


@pytest.mark.skipif(not __import__("shutil").which("g++"), reason="inductor needs a C++ compiler on a CPU")
def test_compiled_static_step_with_attention_limits_matches_the_dynamic_loop(text_engine):
    """The CUDA set-up of the static loop (torch.compile on a thread of its own, one graph per
    attention limit), run on the CPU, where inductor compiles the same graphs without CUDA graphs."""
    from text_service.decode import StaticDecoder
    from text_service.server import load_engine
    from text_service.settings import TextSettings
    from tests.conftest import TEST_MODEL_CACHE

    static = load_engine(TextSettings(model="tiny", model_cache_dir=TEST_MODEL_CACHE, device="cpu", decode="static"))
    static.decoder = StaticDecoder(static.parts, compile_step=True)
    theirs = run(text_engine, schema=EVERY_TYPE, num_rows=24, seed=5)[0]
    assert run(static, schema=EVERY_TYPE, num_rows=24, seed=5)[0] == theirs
    static.decoder.warm_up_limits()  # the limits this wave did not reach
    assert run(static, schema=EVERY_TYPE, num_rows=24, seed=5)[0] == theirs


def test_static_batches_come_in_a_few_sizes():
    from text_service.decode import static_batch_size

    assert [static_batch_size(n, 512) for n in (1, 16, 17, 64, 65, 256, 257, 512)] == [16, 16, 64, 64, 256, 256, 512, 512]
    assert [static_batch_size(n, 100) for n in (1, 17, 99, 100)] == [16, 64, 100, 100]


@pytest.mark.gpu
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_static_decoder_with_cuda_graphs_writes_valid_rows():
    from text_service.server import load_engine
    from text_service.settings import TextSettings
    from tests.conftest import TEST_MODEL_CACHE

    engine = load_engine(TextSettings(model="tiny", model_cache_dir=TEST_MODEL_CACHE, device="cuda"))
    assert engine.decode_mode == "static" and engine.decoder.compile_step
    prepared = engine.prepare(EVERY_TYPE)
    rows, _, summary = run(engine, schema=EVERY_TYPE, num_rows=64, seed=1)
    assert len(rows) == 64 and not summary.partial
    assert all(engine.parse_row(r, prepared) is not None for r in rows)
    # The service runs each request on a thread of its own; the recorded graphs must replay there
    # (they are thread-local in torch, so the engine keeps them on one thread of its own).
    from concurrent.futures import ThreadPoolExecutor

    for _ in range(2):
        with ThreadPoolExecutor(1) as other:
            again = other.submit(run, engine, schema=EVERY_TYPE, num_rows=64, seed=1).result()[0]
        assert again == rows


def test_rows_of_a_wave_share_the_prompt_prefix(text_engine):
    """Only each row's last line differs, so the decoders prefill the rest once per wave."""
    from text_service.prompts import build_prompts

    prompts = build_prompts(text_engine.tokenizer, text_engine.prepare(EVERY_TYPE).schema, "Dutch bakery", 3, [0, 1, 2])
    assert len(prompts.prefix) > 3 * max(len(s) for s in prompts.suffixes)
    texts = [text_engine.tokenizer.decode(prompts.full(i)) for i in range(3)]
    assert len(set(texts)) == 3
    for text in texts:
        assert "Dutch bakery" in text and "- age: integer" in text and text.endswith("<|im_start|>assistant\n")


def test_a_call_behind_a_busy_model_says_it_waits_and_can_be_cancelled_there(text_engine, monkeypatch):
    import threading
    import time

    from sdg import streaming
    from sdg.streaming import Waiting

    monkeypatch.setattr(streaming, "WAITING_EVERY_S", 0.05)
    request = RowRequest(schema={"name": "string"}, num_rows=2, seed=5)

    def start(cancelled=lambda: False) -> tuple[list, threading.Thread]:
        events: list = []
        thread = threading.Thread(target=lambda: events.append(text_engine.generate(request, events.append, cancelled)))
        thread.start()
        return events, thread

    with text_engine.model_lock:  # an earlier call holds the model
        events, thread = start()
        time.sleep(0.5)
        assert len(events) >= 3 and all(isinstance(e, Waiting) for e in events), events
        assert events[0].waited_s < 0.05 and events[-1].waited_s > events[0].waited_s
    thread.join(60)
    first_work = next(i for i, e in enumerate(events) if not isinstance(e, Waiting))
    assert not any(isinstance(e, Waiting) for e in events[first_work:])
    assert (events[-1].rows_generated, events[-1].partial) == (2, False)

    stop = threading.Event()
    with text_engine.model_lock:
        events, thread = start(stop.is_set)
        time.sleep(0.2)
        stop.set()
        thread.join(10)
        assert not thread.is_alive()  # it left while the model was still held
    assert (events[-1].rows_generated, events[-1].partial, events[-1].reason) == (0, True, "cancelled")
    _, _, summary = run(text_engine, schema={"name": "string"}, num_rows=1, seed=5)  # the lock is free again
    assert summary.rows_generated == 1
