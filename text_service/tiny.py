"""Builds the `tiny` demo text model: a Qwen2-architecture causal LM with a tiny config, random
weights fixed by a seed, and a byte-level BPE tokenizer trained here on a small built-in corpus,
with Qwen's chat template. Saved with save_pretrained and loaded back through the same
from_pretrained path as the real model. Its output is schema-shaped nonsense.

    python -m text_service.tiny [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

TINY_SEED = 1234
TINY_SUBDIR = Path("tiny") / "text"
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Qwen2.5's chat template, reduced to what SDG uses (system + user turns, generation prompt).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def tokenizer_corpus() -> list[str]:
    """Text the tokenizer learns merges from: JSON punctuation, digits, dates, common words."""
    words = (
        "name customer order value price product age email date time city country street id "
        "true false null the a an of and to in is for on with as by at from this that row data "
        "alice bob carol dave erin frank grace heidi ivan judy mallory oscar peggy trent walter "
        "london paris berlin tokyo madrid rome amsterdam new york boston chicago seattle "
        "red green blue small large modern warehouse interior outdoor retail storefront white "
        "background dog cat car tree house person bottle chair table street sky water mountain "
        "system user assistant"  # the chat template's roles
    ).split()
    lines = [" ".join(words[i : i + 12]) for i in range(0, len(words), 12)]
    samples = [
        {"customer_name": "Alice Smith", "age": 34, "order_value": 129.99},
        {"id": 7, "product": "Blue Chair", "price": 45.5, "in_stock": True, "tags": ["home", "sale"]},
        {"email": "bob@example.com", "created": "2024-05-17T10:30:00Z", "date": "2023-11-02"},
        {"uuid": "3f2a9c1e-8b7d-4e6f-a1b2-c3d4e5f60718", "note": None},
    ]
    lines += [json.dumps(s) for s in samples] * 4
    lines += [" ".join(str(n) for n in range(k, k + 50)) for k in range(0, 1000, 50)]
    # SDG's own prompt wording, so that prompts take few tokens and tiny-model tests stay fast.
    from text_service.prompts import HINTS, SYSTEM, USER_TEMPLATE_WORDS

    lines += [SYSTEM, USER_TEMPLATE_WORDS, " ".join(HINTS)] * 8
    lines += [f"- {w}: {t}, maxLength 48" for w in words for t in ("string", "integer", "number", "boolean")]
    return lines


def build_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=2048,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(tokenizer_corpus(), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS[1:],
        chat_template=CHAT_TEMPLATE,
        model_max_length=4096,
        padding_side="left",
    )


def build_model(vocab_size: int, eos_token_id: int, pad_token_id: int):
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(TINY_SEED)
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(eos_token_id=eos_token_id, pad_token_id=pad_token_id)
    return model


def build_tiny(cache_dir: Path) -> Path:
    """Builds the tiny model under `cache_dir/tiny/text` unless it is already there; returns the dir."""
    target = Path(cache_dir) / TINY_SUBDIR
    if (target / "config.json").exists() and (target / "tokenizer.json").exists():
        return target
    tokenizer = build_tokenizer()
    # Round the vocabulary up as real checkpoints do, so masks and logits have padded widths too.
    vocab_size = (len(tokenizer) + 63) // 64 * 64
    model = build_model(vocab_size, tokenizer.eos_token_id, tokenizer.pad_token_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Build beside the target and rename, so a concurrent reader never sees half a model.
    staging = Path(tempfile.mkdtemp(prefix=".text-", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / "SDG_DEMO_MODEL").write_text("random weights; built by text_service.tiny\n")
        try:
            os.rename(staging, target)
        except OSError:
            if not (target / "config.json").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def main() -> None:
    from text_service.settings import TextSettings

    parser = argparse.ArgumentParser(description="Build the tiny demo text model.")
    parser.add_argument("--cache-dir", type=Path, default=None)
    cache_dir = parser.parse_args().cache_dir or TextSettings().model_cache_dir
    print(build_tiny(cache_dir))


if __name__ == "__main__":
    main()
