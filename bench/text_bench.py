"""Text throughput: TextEngine against plain transformers `generate` at the same batch size, in one
run on one device; then the same request through the gRPC service (started in this process on a
free port) and through the REST gateway; then a validity run over a schema that uses every type and constraint.

Full mode builds the Qwen2.5-1.5B architecture from its published config (hidden 1536, 28 layers,
12 heads, 2 KV heads, intermediate 8960, vocab 151936, tied embeddings) with random weights: speed
does not depend on the weights' values, and nothing is downloaded. Its tokenizer is a byte-level
BPE trained here to the same vocabulary size, so grammar masks cost what they cost for a real
151k-token vocabulary. `--tiny` runs the tiny demo model on the CPU, as a smoke test.

    python bench/text_bench.py                        # Qwen2.5-1.5B architecture, 1,024 rows
    python bench/text_bench.py --tiny                 # seconds on a CPU (make bench-text)
    python bench/text_bench.py --validity 10000       # plus 10,000 rows of EVERY_TYPE

Each measurement is printed as a JSON line as soon as it is taken; the last line printed is one
JSON object with all the results.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import platform
import random
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import grpc  # noqa: E402
import torch  # noqa: E402
from jsonschema import Draft202012Validator  # noqa: E402

from bench.gateway_process import run_job  # noqa: E402
from sdg.devices import resolve_device  # noqa: E402
from sdg.model_info import ModelInfo  # noqa: E402
from sdg.schema import normalize_schema  # noqa: E402
from sdg.v1 import text_pb2, text_pb2_grpc  # noqa: E402
from tests.text_service.schemas import EVERY_TYPE, SEED_SCHEMA  # noqa: E402
from text_service.acceptance import parse_row  # noqa: E402
from text_service.engine import RowBatch, RowRequest, TextEngine  # noqa: E402
from text_service.model import LoadedTextModel, load_text_model  # noqa: E402
from text_service.prompts import build_prompts  # noqa: E402
from text_service.server import create_server  # noqa: E402
from text_service.settings import TextSettings  # noqa: E402
from text_service.tiny import CHAT_TEMPLATE, SPECIAL_TOKENS, tokenizer_corpus  # noqa: E402

# SEED_SCHEMA with customer_name a Faker field and age sampled.
SAMPLED_SEED_SCHEMA = {
    "customer_name": {"type": "string", "x-sdg": {"faker": {"provider": "name"}}},
    "age": {"type": "integer", "minimum": 18, "maximum": 90, "x-sdg": {"gaussian": {"mean": 40, "stddev": 12}}},
    "order_value": "float",
}

QWEN25_15B = dict(
    vocab_size=151936,
    hidden_size=1536,
    intermediate_size=8960,
    num_hidden_layers=28,
    num_attention_heads=12,
    num_key_value_heads=2,
    max_position_embeddings=32768,
    rope_theta=1000000.0,
    rms_norm_eps=1e-6,
    tie_word_embeddings=True,
)


def bench_tokenizer(vocab_size: int, cache_dir: Path):
    """A byte-level BPE with `vocab_size` tokens, trained on synthetic words (cached on disk)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    target = cache_dir / f"bench-tokenizer-{vocab_size}"
    if not (target / "tokenizer.json").exists():
        rng = random.Random(0)
        syllables = [a + b for a in "bcdfghjklmnprstvwz" for b in ("a", "e", "i", "o", "u", "ai", "ou", "ee")]
        words = ["".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(600_000)]
        lines = tokenizer_corpus() + [" ".join(words[i : i + 20]) for i in range(0, len(words), 20)]
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size - 64,
            special_tokens=SPECIAL_TOKENS,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tok.train_from_iterator(lines, trainer=trainer)
        PreTrainedTokenizerFast(
            tokenizer_object=tok,
            eos_token="<|im_end|>",
            pad_token="<|endoftext|>",
            additional_special_tokens=SPECIAL_TOKENS[1:],
            chat_template=CHAT_TEMPLATE,
            padding_side="left",
        ).save_pretrained(target)
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(target)


def load_full_size(device: torch.device, cache_dir: Path) -> LoadedTextModel:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tokenizer = bench_tokenizer(QWEN25_15B["vocab_size"], cache_dir)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    config = Qwen2Config(**QWEN25_15B, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2ForCausalLM(config).to(dtype).eval()
    info = ModelInfo(
        "qwen2.5-1.5b-architecture", "random weights", True, True, str(device), str(dtype), "Qwen2.5-1.5B architecture (random weights)"
    )
    return LoadedTextModel(model, tokenizer, device, info)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_generate(loaded: LoadedTextModel, rows: int, batch: int, new_tokens: int) -> dict:
    """Plain `model.generate` on the same prompts, `batch` rows per call, fixed new tokens."""
    tok, model, device = loaded.tokenizer, loaded.model, loaded.device
    schema = normalize_schema(SEED_SCHEMA)
    wave = build_prompts(tok, schema, "", 0, list(range(rows)))
    prompts = [wave.full(i) for i in range(rows)]
    started = time.perf_counter()
    generated = 0
    for i in range(0, rows, batch):
        chunk = prompts[i : i + batch]
        width = max(len(p) for p in chunk)
        ids = torch.tensor([[tok.pad_token_id] * (width - len(p)) + p for p in chunk], device=device)
        mask = (torch.arange(width, device=device)[None, :] >= torch.tensor([width - len(p) for p in chunk], device=device)[:, None]).long()
        with torch.inference_mode():
            out = model.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                do_sample=True,
                top_p=0.95,
                pad_token_id=tok.pad_token_id,
            )
        generated += (out.shape[1] - width) * len(chunk)
    sync(device)
    elapsed = time.perf_counter() - started
    return {"rows_per_s": rows / elapsed, "tokens_per_s": generated / elapsed, "elapsed_s": elapsed}


def bench_engine(engine: TextEngine, schema, rows: int, seed: int = 1) -> dict:
    started = time.perf_counter()
    summary = engine.generate(RowRequest(schema=schema, num_rows=rows, seed=seed))
    sync(engine.device)
    elapsed = time.perf_counter() - started
    return {
        "rows_per_s": summary.rows_generated / elapsed,
        "tokens_per_s": summary.tokens_generated / elapsed,
        "tokens_forced_share": summary.tokens_forced / max(1, summary.tokens_generated + summary.tokens_forced),
        "rows": summary.rows_generated,
        "rows_invalid_regenerated": summary.rows_invalid,
        "distinct_ratio": summary.distinct_ratio,
        "elapsed_s": elapsed,
        "profile": {k: round(getattr(engine.last_stats, k), 3) for k in ("prepare_s", "fill_s", "sample_s", "accept_s", "launch_s", "check_s", "steps")},
    }


def bench_validity(engine: TextEngine, rows: int) -> dict:
    """EVERY_TYPE rows, each checked again here: strict JSON, valid against the schema as written
    and against its normalized form."""
    prepared = engine.prepare(EVERY_TYPE)
    checks = [Draft202012Validator(s, format_checker=Draft202012Validator.FORMAT_CHECKER) for s in (prepared.read.source, prepared.schema)]
    texts = []
    started = time.perf_counter()
    summary = engine.generate(
        RowRequest(schema=EVERY_TYPE, num_rows=rows, seed=11), lambda event: isinstance(event, RowBatch) and texts.extend(event.rows)
    )
    elapsed = time.perf_counter() - started
    parsed = [parse_row(t) for t in texts]
    valid = sum(1 for row in parsed if row is not None and all(check.is_valid(row) for check in checks))
    return {
        "rows_requested": rows,
        "rows_written": len(texts),
        "rows_valid": valid,
        "valid_pct": 100.0 * valid / rows,
        "rows_invalid_regenerated": summary.rows_invalid,
        "rows_per_s": len(texts) / elapsed,
        "decode": engine.decode_mode,
    }


async def _service_rows(engine: TextEngine, rows: int) -> dict:
    server, port, servicer, _ = create_server(TextSettings(listen="127.0.0.1:0"))
    servicer.attach(engine)
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = text_pb2_grpc.TextServiceStub(channel)
            request = text_pb2.GenerateRowsRequest(schema_json=json.dumps(SEED_SCHEMA), num_rows=rows, seed=1)
            started = time.perf_counter()
            received = 0
            async for message in stub.GenerateRows(request):
                if message.HasField("rows"):
                    received += len(message.rows.rows_json)
            elapsed = time.perf_counter() - started
    finally:
        await server.stop(None)
    return {"rows_per_s": received / elapsed, "rows": received, "elapsed_s": elapsed}


async def _rest_rows(engine: TextEngine, rows: int, output_dir: Path) -> dict:
    """The whole service path: REST -> gateway -> gRPC -> engine -> rows on disk, the gateway in
    its own process (bench/gateway_process.py)."""
    server, port, servicer, _ = create_server(TextSettings(listen="127.0.0.1:0"))
    servicer.attach(engine)
    await server.start()
    try:
        body = {"schema": SEED_SCHEMA, "num_samples": rows, "seed": 1}
        status, elapsed = await run_job("text", body, output_dir, text=f"127.0.0.1:{port}")
    finally:
        await server.stop(None)
    written = len(json.loads((Path(status["output_path"]) / "data.json").read_text())) if status["status"] == "completed" else 0
    return {"rows_per_s": written / elapsed, "rows": written, "status": status["status"], "elapsed_s": elapsed}


def profile_engine(engine: TextEngine, rows: int, path: Path) -> dict:
    """One engine run under torch.profiler; writes the ops and kernels that took the most time."""
    from torch.profiler import ProfilerActivity, profile

    cuda = engine.device.type == "cuda"
    with profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])) as prof:
        measured = bench_engine(engine, SEED_SCHEMA, rows, seed=3)
    averages = prof.key_averages()
    tables = [averages.table(sort_by="self_cpu_time_total", row_limit=30)]
    if cuda:
        tables.insert(0, averages.table(sort_by="device_time_total", row_limit=45))
    path.write_text("\n".join([json.dumps(measured), *tables]))
    return {"written": str(path), "rows_per_s_under_profiler": measured["rows_per_s"]}


def in_worker_thread(fn, *args, **kwargs):
    """Runs `fn` in a worker thread, as the service runs the engine. On a CPU this matters: the
    main thread's OpenMP pool contends with xgrammar's mask threads (measured 2x slower)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args, **kwargs).result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny demo model on the CPU")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--rows", type=int, default=None, help="rows per measurement (default 1024; tiny 64)")
    parser.add_argument("--batch", type=int, default=None, help="batch size for both (default: all rows at once)")
    parser.add_argument("--new-tokens", type=int, default=48, help="new tokens per row for plain generate")
    parser.add_argument("--validity", type=int, default=0, help="also check this many EVERY_TYPE rows")
    parser.add_argument("--decode", nargs="+", default=["static", "dynamic"], choices=["static", "dynamic"])
    parser.add_argument("--cache-dir", type=Path, default=REPO / "model_cache")
    parser.add_argument("--profile", type=Path, default=None, help="last, profile one engine run into this file")
    args = parser.parse_args()

    device = torch.device("cpu") if args.tiny else resolve_device(args.device)
    rows = args.rows or (64 if args.tiny else 1024)
    batch = args.batch or rows
    if args.tiny:
        loaded = load_text_model(TextSettings(model="tiny", model_cache_dir=args.cache_dir, device="cpu"))
    else:
        loaded = load_full_size(device, args.cache_dir)
    result = {
        "bench": "text",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({platform.processor() or platform.machine()})",
        "model": loaded.info.display_name,
        "schema": SEED_SCHEMA,
        "rows": rows,
        "batch": batch,
        "torch": torch.__version__,
    }

    def phase(name: str, fn, *fn_args):
        """Runs one measurement and prints it at once as its own JSON line, so a run cut short
        (or one phase that fails) still leaves every number measured before it."""
        started = time.perf_counter()
        try:
            value = fn(*fn_args)
        except Exception as exc:  # noqa: BLE001 - a bench reports a failed phase and goes on
            logging.exception("phase %s failed", name)
            value = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps({"phase": name, "wall_s": round(time.perf_counter() - started, 2), name: value}), flush=True)
        result[name] = value
        return value

    # Warm up every path at full size outside the timings: CUDA context and kernels for these
    # shapes, grammar compilation, and the static decoder's CUDA graphs (captured per shape).
    phase("generate_warm_up", in_worker_thread, bench_generate, loaded, min(rows, batch), batch, 4)
    baseline = phase("baseline_generate", in_worker_thread, bench_generate, loaded, rows, batch, args.new_tokens)
    # Engines only now: an engine switches the shared model to its own decode attention
    # (text_service/attention.py), and the baseline must run transformers as it ships.
    engines = {mode: TextEngine(loaded, batch_size=batch, decode=mode) for mode in args.decode}
    measured = {}
    for mode, engine in engines.items():
        phase(f"engine_{mode}_warm_up", in_worker_thread, bench_engine, engine, SEED_SCHEMA, rows, 2)
        measured[mode] = phase(f"engine_{mode}", in_worker_thread, bench_engine, engine, SEED_SCHEMA, rows)
    ok = {mode: m for mode, m in measured.items() if "rows_per_s" in m}
    if ok and "rows_per_s" in baseline:
        best = max(ok, key=lambda mode: ok[mode]["rows_per_s"])
        engine, ours = engines[best], ok[best]
        result.update(best_decode=best, engine=ours, ratio_vs_generate=ours["rows_per_s"] / baseline["rows_per_s"])
        print(json.dumps({"phase": "ratio", "best_decode": best, "ratio_vs_generate": result["ratio_vs_generate"]}), flush=True)
        # Sampled fields (x-sdg) are forced, not decoded: the same schema with two of its three
        # fields sampled must be at least as fast as the all-LLM one.
        phase("sampled_warm_up", in_worker_thread, bench_engine, engine, SAMPLED_SEED_SCHEMA, rows, 2)
        sampled = phase("sampled", in_worker_thread, bench_engine, engine, SAMPLED_SEED_SCHEMA, rows)
        if "rows_per_s" in sampled:
            result["sampled_vs_all_llm"] = sampled["rows_per_s"] / ours["rows_per_s"]
        service = phase("service", lambda: asyncio.run(_service_rows(engine, rows)))
        with tempfile.TemporaryDirectory() as output_dir:
            rest = phase("rest", lambda: asyncio.run(_rest_rows(engine, rows, Path(output_dir))))
        for name, value in (("service", service), ("rest", rest)):
            if "rows_per_s" in value:
                result[f"{name}_vs_engine"] = value["rows_per_s"] / ours["rows_per_s"]
        if args.validity:
            # Validity does not depend on the decode loop (a test shows both give the same rows),
            # and the dynamic one has no new shape to compile for this schema.
            checker = engines.get("dynamic") or TextEngine(loaded, batch_size=batch, decode="dynamic")
            phase("validity", in_worker_thread, bench_validity, checker, args.validity)
        if args.profile:
            phase("profile", in_worker_thread, profile_engine, engine, rows, args.profile)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
