"""Builds the `tiny` demo image model: a Stable Diffusion pipeline with SD-1.5's structure (UNet,
four-block VAE so the latent is 1/8 of the image, CLIP text encoder, PNDM scheduler) at toy sizes,
random weights fixed by a seed, and a word-level tokenizer built here from `image_service.words`.
Saved with save_pretrained and loaded back through the same from_pretrained path as real models.
Its images are coloured noise; its attention maps are real arithmetic on random weights.

There is no safety checker: SDG loads every pipeline with `safety_checker=None`.

    python -m image_service.tiny [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

from image_service.words import COMMON_NOUNS, DESCRIPTIVE_WORDS, STOP_WORDS

TINY_SEED = 1234
TINY_SUBDIR = Path("tiny") / "image"
# Left in the folder, so that loading it by path still reports a demo model.
DEMO_MARKER = "SDG_DEMO_MODEL"
BOS, EOS, UNK = "<|startoftext|>", "<|endoftext|>", "<|unk|>"
MAX_TOKENS = 77  # CLIP's context length; the pipeline pads every prompt to it
PUNCTUATION = list(",.;:!?'\"()[]-&/")
# SD-1.5's scheduler settings (scheduler/scheduler_config.json of the published model).
SD15_SCHEDULER = dict(
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    num_train_timesteps=1000,
    set_alpha_to_one=False,
    skip_prk_steps=True,
    steps_offset=1,
)


def build_tokenizer():
    """A word-level tokenizer: every known word is one token (so an object word maps to exactly one
    position), unknown words become <|unk|>, and prompts are wrapped and padded the way CLIP's are."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = sorted(STOP_WORDS | DESCRIPTIVE_WORDS | COMMON_NOUNS)
    tokens = [BOS, EOS, UNK, *PUNCTUATION, *"0123456789", *words]
    tok = Tokenizer(models.WordLevel(vocab={t: i for i, t in enumerate(tokens)}, unk_token=UNK))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A {EOS}", special_tokens=[(BOS, 0), (EOS, 1)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        pad_token=EOS,  # as in SD-1.5's CLIP tokenizer
        model_max_length=MAX_TOKENS,
    )


def build_pipeline():
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = build_tokenizer()
    torch.manual_seed(TINY_SEED)
    # Cross-attention only at half the latent resolution (as SD's own 32x32 and 16x16 levels are
    # where the annotation maps come from); the full-resolution level has plain ResNet blocks,
    # which keeps a 512x512 image at a few steps to about a second on one CPU core.
    unet = UNet2DConditionModel(
        sample_size=64,
        in_channels=4,
        out_channels=4,
        block_out_channels=(16, 32),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,  # diffusers' legacy name: this is the number of heads
        norm_num_groups=8,
    )
    torch.manual_seed(TINY_SEED + 1)
    # Four blocks, like SD's VAE, so the latent is 1/8 of the image (vae_scale_factor 8).
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 16, 16, 16),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=512,
    )
    torch.manual_seed(TINY_SEED + 2)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=MAX_TOKENS,
            projection_dim=32,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=PNDMScheduler(**SD15_SCHEDULER),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def build_tiny(cache_dir: Path) -> Path:
    """Builds the tiny pipeline under `cache_dir/tiny/image` unless it is already there; returns the dir."""
    target = Path(cache_dir) / TINY_SUBDIR
    if (target / "model_index.json").exists():
        return target
    pipeline = build_pipeline()
    target.parent.mkdir(parents=True, exist_ok=True)
    # Build beside the target and rename, so a concurrent reader never sees half a model.
    staging = Path(tempfile.mkdtemp(prefix=".image-", dir=target.parent))
    try:
        pipeline.save_pretrained(staging)
        (staging / DEMO_MARKER).write_text("random weights; built by image_service.tiny\n")
        try:
            os.rename(staging, target)
        except OSError:
            if not (target / "model_index.json").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def main() -> None:
    from image_service.settings import ImageSettings

    parser = argparse.ArgumentParser(description="Build the tiny demo image model.")
    parser.add_argument("--cache-dir", type=Path, default=None)
    cache_dir = parser.parse_args().cache_dir or ImageSettings().model_cache_dir
    print(build_tiny(cache_dir))


if __name__ == "__main__":
    main()
