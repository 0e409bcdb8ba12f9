"""Builds each row's chat prompt: the schema in words, the caller's instructions, and a per-row
hint drawn from the job seed, so that rows of one job do not collapse into the same answer."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

SYSTEM = (
    "You generate realistic synthetic data. Reply with exactly one JSON object on one line and "
    "nothing else."
)
# Steering words for variety; the model is asked to let one of them colour the row.
HINTS = (
    "Amsterdam", "Nairobi", "Osaka", "Lima", "Oslo", "Cairo", "Austin", "Porto", "Hanoi", "Quebec",
    "Seoul", "Accra", "Krakow", "Perth", "Bogota", "Dublin", "Mumbai", "Reykjavik", "Tunis", "Zurich",
    "student", "retiree", "nurse", "farmer", "engineer", "artist", "chef", "pilot", "teacher", "lawyer",
    "budget", "premium", "bulk", "first-time", "returning", "seasonal", "urgent", "gift", "online", "in-store",
    "spring", "summer", "autumn", "winter", "morning", "night", "weekend", "holiday", "rainy", "sunny",
)


# The fixed wording of the user turn, also used to train the tiny model's tokenizer.
USER_TEMPLATE_WORDS = (
    "Write one row of data with these fields: The data describes: Use realistic, varied values, "
    "and let each row draw on its theme word. Row #, theme ''. format date date-time email uuid minimum "
    "maximum enum pattern minLength maxLength minItems maxItems string integer number boolean "
    "object array null"
)


def describe_field(name: str, spec: dict[str, Any]) -> str:
    kind = spec["type"] if isinstance(spec["type"], str) else "/".join(spec["type"])
    details = [kind]
    for key in ("format", "minimum", "maximum", "enum", "pattern", "minLength", "maxLength", "minItems", "maxItems"):
        if key in spec:
            details.append(f"{key} {json.dumps(spec[key])}")
    line = f"- {name}: {', '.join(details)}"
    if spec.get("description"):
        line += f" — {spec['description']}"
    return line


def row_hint(seed: int, slot: int) -> tuple[int, str]:
    rng = random.Random(seed * 7919 + slot)
    return rng.randrange(1, 10_000), rng.choice(HINTS)


@dataclass(frozen=True)
class WavePrompts:
    """The prompts of one wave as token ids: the part every row shares (system turn, fields,
    instructions) and each row's own ending (its hint and the assistant turn's opening). The
    decoders prefill the shared part once and copy its KV cache to every row."""

    prefix: list[int]
    suffixes: list[list[int]]

    def full(self, row: int) -> list[int]:
        return self.prefix + self.suffixes[row]


# Stands where the per-row line goes while the chat template is applied, then splits the text.
_ROW_LINE = "\x00SDG-ROW-LINE\x00"


def build_prompts(tokenizer, schema: dict[str, Any], instructions: str, seed: int, slots: list[int]) -> WavePrompts:
    fields = "\n".join(describe_field(name, spec) for name, spec in schema["properties"].items())
    user = f"Write one row of data with these fields:\n{fields}\n"
    if schema.get("description"):
        user += f"The data describes: {schema['description']}\n"
    if instructions:
        user += f"{instructions}\n"
    # Everything rows share stays here, in the prefix that is prefilled once per wave; each row's
    # own line is kept short, since every token of it is prefilled for every row.
    user += "Use realistic, varied values, and let each row draw on its theme word.\n"
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user + _ROW_LINE}]
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    head, tail = text.split(_ROW_LINE)
    lines = []
    for slot in slots:
        number, hint = row_hint(seed, slot)
        lines.append(f"Row #{number}, theme '{hint}'.{tail}")
    # One batched call: a fast tokenizer encodes the wave's lines in parallel (83 ms for 1,024
    # lines one call at a time, with the 151k-token bench tokenizer).
    suffixes = tokenizer(lines, add_special_tokens=False)["input_ids"]
    return WavePrompts(tokenizer(head, add_special_tokens=False)["input_ids"], suffixes)
