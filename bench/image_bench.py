"""Image throughput: ImageEngine against a plain diffusers StableDiffusionPipeline call, in one run
on the same model, batch size, resolution and step count; then the engine with annotation tracing,
the same request through the gRPC service (started in this process on a free port), and through
the whole service path: REST to a gateway process, which writes the dataset.

Full mode builds SD-1.5's UNet, VAE and CLIP text encoder from their published configs (written
below) with random weights: speed does not depend on the weights' values, and nothing is
downloaded. `--model` loads a pipeline with real weights instead. `--tiny` runs the tiny demo
pipeline on the CPU with a few steps, as a smoke test.

    python bench/image_bench.py                 # SD-1.5 architecture, 512x512, 30 steps, batch 8
    python bench/image_bench.py --compile       # engine with torch.compile (baseline stays eager)
    python bench/image_bench.py --feature-reuse 3   # also the engine with feature reuse (approximate)
    python bench/image_bench.py --feature-reuse 3 --reuse-sweep 2,4,5   # and other N: speed against PSNR
    python bench/image_bench.py --tiny          # seconds on a CPU
    python bench/image_bench.py --model DIR --feature-reuse 3   # real weights: reuse's PSNR is a fidelity measure

The last line printed is one JSON object with the results.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import math
import platform
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import diffusers  # noqa: E402
import grpc  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel  # noqa: E402
from transformers import CLIPTextConfig, CLIPTextModel  # noqa: E402

from bench.gateway_process import run_job  # noqa: E402
from image_service.engine import ImageEngine  # noqa: E402
from image_service.model import LoadedImageModel, dtype_for, tune_for_device  # noqa: E402
from image_service.server import create_server  # noqa: E402
from image_service.settings import ImageSettings  # noqa: E402
from image_service.tiny import SD15_SCHEDULER, build_tiny, build_tokenizer  # noqa: E402
from image_service.types import GeneratedImage, ImageRequest  # noqa: E402
from sdg.devices import resolve_device  # noqa: E402
from sdg.model_info import ModelInfo  # noqa: E402
from sdg.v1 import image_pb2, image_pb2_grpc  # noqa: E402

# stable-diffusion-v1-5: unet/config.json, vae/config.json, and openai/clip-vit-large-patch14's
# text config (text_encoder/config.json).
SD15_UNET = dict(
    sample_size=64,
    in_channels=4,
    out_channels=4,
    layers_per_block=2,
    block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=768,
    attention_head_dim=8,
    norm_num_groups=32,
    norm_eps=1e-5,
    flip_sin_to_cos=True,
    freq_shift=0,
    downsample_padding=1,
    act_fn="silu",
)
SD15_VAE = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(128, 256, 512, 512),
    layers_per_block=2,
    latent_channels=4,
    norm_num_groups=32,
    sample_size=512,
    act_fn="silu",
    scaling_factor=0.18215,
)
SD15_TEXT = dict(
    vocab_size=49408,
    hidden_size=768,
    intermediate_size=3072,
    num_hidden_layers=12,
    num_attention_heads=12,
    max_position_embeddings=77,
    hidden_act="quick_gelu",
    layer_norm_eps=1e-5,
    projection_dim=768,
)
PROMPTS = (
    "a photo of a dog running on a beach at sunset",
    "a red car parked in front of a modern house",
    "a cat sleeping on a sofa next to a lamp",
    "a warehouse interior with pallets and a forklift",
)
ANNOTATIONS = ("bbox", "segmentation")


def build_sd15(device: torch.device, dtype: torch.dtype) -> StableDiffusionPipeline:
    """SD-1.5's architecture with random weights, built directly on the device."""
    tokenizer = build_tokenizer()  # ids stay far below CLIP's 49408; the tokenizer does not affect speed
    torch.manual_seed(0)
    with device:
        unet = UNet2DConditionModel(**SD15_UNET)
        vae = AutoencoderKL(**SD15_VAE)
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                **SD15_TEXT,
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
        )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=PNDMScheduler(**SD15_SCHEDULER),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    return pipe.to(device, dtype)


def load_folder(folder: Path | str, device: torch.device, dtype: torch.dtype) -> StableDiffusionPipeline:
    pipe = StableDiffusionPipeline.from_pretrained(folder, dtype=dtype, safety_checker=None, requires_safety_checker=False)
    return pipe.to(device)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_baseline(pipe, device, args, warm_up: bool = True) -> float:
    """Seconds per image of plain pipeline calls, `args.batch_size` prompts per call."""
    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(args.batch_size)]

    def call(steps: int, seed: int):
        generators = [torch.Generator("cpu").manual_seed(seed + i) for i in range(args.batch_size)]
        pipe(
            prompts,
            height=args.resolution,
            width=args.resolution,
            num_inference_steps=steps,
            guidance_scale=7.5,
            generator=generators,
        )

    if warm_up:
        call(2, 0)  # cuDNN autotuning, allocator
    sync(device)
    started = time.perf_counter()
    for batch in range(args.batches):
        call(args.steps, batch * args.batch_size)
    sync(device)
    return (time.perf_counter() - started) / (args.batches * args.batch_size)


def bench_request(args, annotations=(), feature_reuse: int = 1) -> ImageRequest:
    return ImageRequest(
        prompts=PROMPTS,
        num_images=args.batches * args.batch_size,
        width=args.resolution,
        height=args.resolution,
        num_inference_steps=args.steps,
        guidance_scale=7.5,
        seed=0,
        annotations=annotations,
        feature_reuse=feature_reuse,
    )


def time_engine(engine: ImageEngine, request: ImageRequest) -> float:
    started = time.perf_counter()
    summary = engine.generate(request)
    elapsed = time.perf_counter() - started
    assert summary.images_generated == request.num_images, summary
    return elapsed / request.num_images


@asynccontextmanager
async def serving(engine: ImageEngine, settings: ImageSettings):
    """The engine behind the image service's gRPC server, on a free local port: yields the address."""
    server, port, servicer, _ = create_server(settings.model_copy(update={"listen": "127.0.0.1:0"}))
    servicer.attach(engine)
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


async def time_service(engine: ImageEngine, settings: ImageSettings, request: ImageRequest) -> float:
    """Seconds per image for the whole GenerateImages stream over a local gRPC connection."""
    async with serving(engine, settings) as address:
        message = image_pb2.GenerateImagesRequest(
            prompts=request.prompts,
            num_images=request.num_images,
            width=request.width,
            height=request.height,
            num_inference_steps=request.num_inference_steps,
            guidance_scale=request.guidance_scale,
            seed=request.seed,
        )
        async with grpc.aio.insecure_channel(address) as channel:
            stub = image_pb2_grpc.ImageServiceStub(channel)
            started = time.perf_counter()
            images = 0
            async for response in stub.GenerateImages(message):
                images += response.WhichOneof("event") == "image"
            elapsed = time.perf_counter() - started
    assert images == request.num_images
    return elapsed / images


async def time_rest(engine: ImageEngine, settings: ImageSettings, request: ImageRequest, output_dir: Path) -> float:
    """Seconds per image for the whole service path: POST /generate/images to a gateway process,
    which streams from the gRPC server and writes the PNGs and metadata (bench/gateway_process.py)."""
    body = {
        "prompts": list(request.prompts),
        "num_images": request.num_images,
        "resolution": [request.width, request.height],
        "num_inference_steps": request.num_inference_steps,
        "guidance_scale": request.guidance_scale,
        "seed": request.seed,
    }
    async with serving(engine, settings) as address:
        status, elapsed = await run_job("images", body, output_dir, image=address)
    assert status["status"] == "completed" and status["stats"]["images_done"] == request.num_images, status
    return elapsed / request.num_images


def peak_memory(device: torch.device) -> dict:
    """The most GPU memory held since the baseline (CUDA only): what torch's caching allocator
    reserved, CUDA graphs' private pools included, the weights too."""
    if device.type != "cuda":
        return {}
    return {"cuda_peak_memory_gib": round(torch.cuda.max_memory_reserved(device) / 2**30, 2)}


def one_batch(engine: ImageEngine, args, feature_reuse: int) -> np.ndarray:
    """The pixels of one batch of the bench's request, made with `feature_reuse`."""
    images = []
    request = replace(bench_request(args, feature_reuse=feature_reuse), num_images=args.batch_size)
    engine.generate(request, lambda event: isinstance(event, GeneratedImage) and images.append(event))
    return np.stack([np.asarray(Image.open(io.BytesIO(image.png)).convert("RGB"), dtype=np.float64) for image in images])


def psnr(exact: np.ndarray, approximate: np.ndarray) -> float:
    """PSNR in dB of a batch made with feature reuse against the same batch made exactly: how far
    reuse moves the pixels. With random weights that says nothing about image quality; with a
    real model's weights it is a first measure of it."""
    error = np.mean((exact - approximate) ** 2)
    return float("inf") if error == 0 else 10 * math.log10(255**2 / error)


def check_compiled(engine: ImageEngine, args, feature_reuse: int = 1) -> str:
    """Whether the measured shapes (plain and traced, with this feature_reuse) run the graphs the
    warm-up compiled: one short batch of each under `fail_on_recompile`. "ok", or torch's
    account of the guard that failed; then the engine would run those shapes eager (the
    service's stance after warm-up), and the compiled numbers below would be eager ones."""
    engine.stance_after_warm_up = "fail_on_recompile"
    try:
        for annotations in ((), ANNOTATIONS):  # two steps: with reuse, a full one, then a shallow one
            engine.generate(replace(bench_request(args, annotations, feature_reuse), num_images=args.batch_size, num_inference_steps=2))
    except Exception as failure:  # noqa: BLE001 - torch's account of the guard that failed
        return f"failed: {failure}"
    finally:
        engine.stance_after_warm_up = "eager_on_recompile"
    return "ok"


# Kernel-name patterns, first match wins: where the GPU time of a profiled batch went. Inductor
# names a fused kernel after every op folded into it ("triton_poi_fused_add_convolution_..."), so
# its templates (triton_mm, triton_conv) come first and any other "triton_" kernel is fused work.
KERNEL_KINDS = (
    ("matmul", ("triton_mm", "triton_tem_fused_mm", "triton_tem_fused_addmm", "triton_tem_fused_bmm")),
    ("convolution", ("triton_conv", "triton_tem_fused_conv")),
    ("fused (inductor)", ("triton_",)),
    ("attention", ("sdpa", "fmha", "flash", "attention")),
    ("convolution", ("conv", "fprop", "dgrad", "nchwtonhwc", "nhwctonchw")),
    ("matmul", ("gemm", "nvjet", "cutlass", "splitk")),
)


def kernel_summary(prof, seconds: float, images: int) -> str:
    """GPU time per kernel kind, and how much of the wall time the GPU was busy at all: a GPU
    idle between steps shows as busy well under 100%."""
    kinds: dict[str, float] = {}
    for event in prof.key_averages():
        if event.device_type != torch.autograd.DeviceType.CUDA or event.self_device_time_total <= 0:
            continue
        name = event.key.lower()
        kind = next((k for k, patterns in KERNEL_KINDS if any(p in name for p in patterns)), "other")
        kinds[kind] = kinds.get(kind, 0.0) + event.self_device_time_total / 1e6
    busy = sum(kinds.values())
    lines = [f"wall {seconds * images:.3f} s for {images} images, GPU busy {busy:.3f} s ({100 * busy / (seconds * images):.0f}%)"]
    lines += [f"  {kind:18} {total:.3f} s  {100 * total / busy:5.1f}%" for kind, total in sorted(kinds.items(), key=lambda kv: -kv[1])]
    return "\n".join(lines)


def idle_gaps(kernels: list[tuple[float, float, str]], host_ops: list[tuple[float, str]], top: int = 8, min_us: float = 200.0) -> str:
    """Where the GPU sat idle: `kernels` are (start, end, name) of device work and `host_ops`
    (start, name) of the host's torch ops, in the profiler's microseconds. Reports the gaps of at
    least `min_us` between device work, the longest first, each with the work on either side and
    the host ops that began inside it (none: the host was busy outside torch, or held the GIL
    elsewhere; a sync or copy: the host waited for the device)."""
    if not kernels:
        return ""
    kernels = sorted(kernels)
    origin, busy_until, last = kernels[0][0], kernels[0][1], kernels[0][2]
    gaps = []
    for start, end, name in kernels[1:]:
        if start - busy_until >= min_us:
            gaps.append((start - busy_until, busy_until, start, last, name))
        if end > busy_until:
            busy_until, last = end, name
    lines = [f"idle gaps of {min_us / 1e3:g} ms or more: {len(gaps)}, {sum(g[0] for g in gaps) / 1e3:.1f} ms in all"]
    for length, begin, end, before, after in sorted(gaps, reverse=True)[:top]:
        began = Counter(name for at, name in host_ops if begin <= at < end)
        host = ", ".join(f"{name} x{count}" for name, count in began.most_common(4)) or "no torch op"
        lines.append(f"  {length / 1e3:6.2f} ms at +{(begin - origin) / 1e3:.1f} ms, after {before[:40]}, before {after[:40]}; host: {host}")
    return "\n".join(lines)


def profiled_gaps(prof) -> str:
    """idle_gaps over one torch.profiler run."""
    device, cpu = torch.autograd.DeviceType.CUDA, torch.autograd.DeviceType.CPU
    events = prof.events()
    kernels = [(e.time_range.start, e.time_range.end, e.name) for e in events if e.device_type == device]
    host_ops = [(e.time_range.start, e.name) for e in events if e.device_type == cpu]
    return idle_gaps(kernels, host_ops)


def profile_batches(pipe, engine: ImageEngine, device, args, on_model_thread) -> str:
    """One batch each of the plain pipeline (eager runs only: a compiled engine compiled the
    pipeline's own UNet in place), the engine, the engine tracing and, with --feature-reuse, the
    engine reusing features, under torch.profiler: GPU time by kernel kind and the GPU's idle
    gaps (CUDA), then the ops and kernels that took the most time, as text tables."""
    from torch.profiler import ProfilerActivity, profile

    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    sort = "device_time_total" if cuda else "cpu_time_total"
    one_batch = argparse.Namespace(**{**vars(args), "batches": 1})
    runs = [] if args.compile else [("plain pipeline", lambda: on_model_thread(time_baseline, pipe, device, one_batch, False))]
    runs += [
        ("engine", lambda: time_engine(engine, bench_request(one_batch))),
        ("engine, tracing", lambda: time_engine(engine, bench_request(one_batch, ANNOTATIONS))),
    ]
    if args.feature_reuse > 1:  # where a shallow step's time goes, against a whole one's
        runs.append((f"engine, feature reuse {args.feature_reuse}", lambda: time_engine(engine, bench_request(one_batch, feature_reuse=args.feature_reuse))))
    tables = []
    for name, run in runs:
        with profile(activities=activities) as prof:
            seconds = run()
        summary = f"{kernel_summary(prof, seconds, args.batch_size)}\n{profiled_gaps(prof)}" if cuda else ""
        table = prof.key_averages().table(sort_by=sort, row_limit=35, max_name_column_width=90)
        tables.append(f"== {name}: {seconds:.4f} s/image under the profiler\n{summary}\n{table}")
    return "\n".join(tables)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny demo pipeline on the CPU, few steps")
    parser.add_argument(
        "--model", default=None, help="a pipeline folder or Hugging Face id with real weights, instead of SD-1.5's architecture with random "
        "weights: with --feature-reuse, its PSNR against the exact images then measures fidelity"
    )
    parser.add_argument("--device", default=None, help="torch device (default: auto; cpu for --tiny)")
    parser.add_argument("--batch-size", type=int, default=None, help="images per denoising batch (8; 2 for --tiny)")
    parser.add_argument("--batches", type=int, default=2, help="timed batches per measurement")
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (30; 3 for --tiny)")
    parser.add_argument("--resolution", type=int, default=None, help="square image size (512; 128 for --tiny)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the engine's UNet and VAE decoder")
    parser.add_argument("--compile-mode", default=None, help="torch.compile mode (default: the service's, SDG_IMAGE_COMPILE_MODE)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="where --tiny finds or builds its model (default: MODEL_CACHE_DIR)")
    parser.add_argument(
        "--feature-reuse", type=int, default=0, help="also measure the engine with this feature_reuse (whole UNet every N steps), and its PSNR against exact images"
    )
    parser.add_argument(
        "--reuse-sweep", default="", help="with --feature-reuse, also measure these feature_reuse values (comma-separated), untraced, each with its PSNR"
    )
    parser.add_argument("--profile", type=Path, default=None, help="last, profile one batch of each into this file (with --compile: the engine's only)")
    args = parser.parse_args()
    args.device = args.device or ("cpu" if args.tiny else "auto")
    args.batch_size = args.batch_size or (2 if args.tiny else 8)
    args.steps = args.steps or (3 if args.tiny else 30)
    args.resolution = args.resolution or (128 if args.tiny else 512)
    args.reuse_sweep = [int(n) for n in args.reuse_sweep.split(",") if n.strip()]
    if args.reuse_sweep and args.feature_reuse < 2:
        parser.error("--reuse-sweep needs --feature-reuse 2 or more (its graphs are warmed up with it)")
    return args


def main() -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    diffusers.utils.logging.disable_progress_bar()
    args = parse_args()
    device = resolve_device(args.device)
    dtype = dtype_for(device)
    # All torch work runs on one thread, the engine's model thread, as in the service: torch keeps
    # cuDNN's tuned plans (and, on a CPU, OpenMP's thread team) per thread, and the baseline and
    # the engine should both find theirs.
    model_thread = ThreadPoolExecutor(1, thread_name_prefix="image-model")

    def on_model_thread(fn, *fn_args):
        return model_thread.submit(fn, *fn_args).result()

    mode = "tiny" if args.tiny else args.model or "sd15-architecture"
    if args.tiny:
        cache_dir = args.cache_dir or ImageSettings().model_cache_dir  # MODEL_CACHE_DIR, as the service
        pipe = on_model_thread(load_folder, build_tiny(cache_dir), device, dtype)
    elif args.model:
        pipe = on_model_thread(load_folder, args.model, device, dtype)
    else:
        pipe = on_model_thread(build_sd15, device, dtype)
    pipe.set_progress_bar_config(disable=True)

    # 1. The baseline first, before the engine's tuning changes the modules in place.
    baseline = on_model_thread(time_baseline, pipe, device, args)
    print(json.dumps({"phase": "baseline", "baseline_s_per_image": round(baseline, 4)}), flush=True)
    if device.type == "cuda":  # from here on, the engine's peak alone
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)

    # 2. The engine on the same modules: first as loaded, then tuned as the service tunes them.
    settings = ImageSettings(
        model=mode,
        device=str(device),
        batch_size=args.batch_size,
        compile=args.compile,
        warm_up_feature_reuse=args.feature_reuse > 1,
        **({"compile_mode": args.compile_mode} if args.compile_mode else {}),
        max_resolution=max(1024, args.resolution),
    )
    demo = not args.model  # the tiny model and the built architecture have random weights
    info = ModelInfo(settings.model, "in-memory", demo, True, str(device), str(dtype), "bench (random weights)" if demo else f"bench ({mode})")
    engine = ImageEngine(LoadedImageModel(pipe, info, device, dtype), settings, model_thread)
    # As loaded, before the service's layout changes: separates what the engine's own loop costs
    # from what the service's tuning does (fused QKV; channels_last too when compiled).
    engine.generate(replace(bench_request(args), num_images=args.batch_size, num_inference_steps=2))
    as_loaded = time_engine(engine, bench_request(args))
    print(json.dumps({"phase": "engine_as_loaded", "engine_as_loaded_s_per_image": round(as_loaded, 4)}), flush=True)
    compile_mode = settings.compile_mode if args.compile else None
    on_model_thread(tune_for_device, pipe, device, compile_mode)
    warm_started = time.perf_counter()
    # As the service's: the shapes measured below, traced and not. Feature reuse's graphs come
    # later, after the exact engine's numbers, so that a run cut short still has those.
    sizes = [(args.resolution, args.resolution)]
    engine.warm_up(sizes, feature_reuse=(1,))
    warm_up_s = time.perf_counter() - warm_started
    print(json.dumps({"phase": "engine_warm_up", "engine_warm_up_s": round(warm_up_s, 1)}), flush=True)
    compiled_check = check_compiled(engine, args) if args.compile else "not compiled"
    print(json.dumps({"phase": "compiled_check", "compiled_check": compiled_check}), flush=True)
    try:
        plain = time_engine(engine, bench_request(args))
        print(json.dumps({"phase": "engine", "engine_s_per_image": round(plain, 4), "ratio_vs_baseline": round(baseline / plain, 3)}), flush=True)
        traced = time_engine(engine, bench_request(args, ANNOTATIONS))
        print(json.dumps({"phase": "traced", "engine_traced_s_per_image": round(traced, 4)}), flush=True)
        service = asyncio.run(time_service(engine, settings, bench_request(args)))
        print(json.dumps({"phase": "service", "service_s_per_image": round(service, 4)}), flush=True)
        with tempfile.TemporaryDirectory() as output_dir:
            rest = asyncio.run(time_rest(engine, settings, bench_request(args), Path(output_dir)))
        print(json.dumps({"phase": "rest", "rest_s_per_image": round(rest, 4)}), flush=True)
        memory = peak_memory(device)
        if memory:
            print(json.dumps({"phase": "memory", **memory}), flush=True)
        reuse = {}
        if args.feature_reuse > 1:
            if device.type == "cuda":  # reuse's own peak, its graphs' pools included
                torch.cuda.reset_peak_memory_stats(device)
            warm_started = time.perf_counter()
            engine.warm_up(sizes, feature_reuse=(2,))
            reuse = {"feature_reuse": args.feature_reuse, "reuse_warm_up_s": round(time.perf_counter() - warm_started, 1)}
            if args.compile:
                reuse["reuse_compiled_check"] = check_compiled(engine, args, args.feature_reuse)
            print(json.dumps({"phase": "feature_reuse_warm_up", **reuse}), flush=True)
            reused = time_engine(engine, bench_request(args, feature_reuse=args.feature_reuse))
            reused_traced = time_engine(engine, bench_request(args, ANNOTATIONS, args.feature_reuse))
            exact = one_batch(engine, args, 1)
            reuse.update(
                reuse_s_per_image=round(reused, 4),
                reuse_traced_s_per_image=round(reused_traced, 4),
                reuse_ratio_vs_baseline=round(baseline / reused, 3),
                reuse_vs_engine=round(plain / reused, 3),
                reuse_psnr_vs_exact_db=round(psnr(exact, one_batch(engine, args, args.feature_reuse)), 2),
            )
            reuse.update({f"reuse_{key}": value for key, value in peak_memory(device).items()})
            print(json.dumps({"phase": "feature_reuse", **reuse}), flush=True)
            # Other N run the same two graphs (N only picks which runs at each step): no compiling.
            for n in args.reuse_sweep:
                seconds = time_engine(engine, bench_request(args, feature_reuse=n))
                point = {"s_per_image": round(seconds, 4), "vs_engine": round(plain / seconds, 3), "ratio_vs_baseline": round(baseline / seconds, 3)}
                point["psnr_vs_exact_db"] = round(psnr(exact, one_batch(engine, args, n)), 2)
                reuse.setdefault("reuse_sweep", {})[str(n)] = point
                print(json.dumps({"phase": "reuse_sweep", "feature_reuse": n, **point}), flush=True)
        if args.profile:
            args.profile.write_text(profile_batches(pipe, engine, device, args, on_model_thread))
    finally:
        engine.close()

    result = {
        "bench": "image",
        "mode": mode,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "dtype": str(dtype).removeprefix("torch."),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "compile": settings.compile_mode if args.compile else False,
        "resolution": args.resolution,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "images_per_measurement": args.batches * args.batch_size,
        "baseline_s_per_image": round(baseline, 4),
        "engine_as_loaded_s_per_image": round(as_loaded, 4),
        "engine_s_per_image": round(plain, 4),
        "engine_traced_s_per_image": round(traced, 4),
        "service_s_per_image": round(service, 4),
        "rest_s_per_image": round(rest, 4),
        "ratio_vs_baseline": round(baseline / plain, 3),
        "tracing_overhead_pct": round(100 * (traced / plain - 1), 1),
        "service_vs_engine": round(plain / service, 3),
        "rest_vs_engine": round(plain / rest, 3),
        "engine_warm_up_s": round(warm_up_s, 1),
        "compiled_check": compiled_check,
        **memory,
        **reuse,
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
