"""Builds each row's chat prompt: the schema in words, the caller's instructions, and a per-row
hint drawn from the job seed, so that rows of one job do not collapse into the same answer. A
field whose description names other fields as {field} (sdg.design) has it rendered in the row's
own line with the row's values known before decoding."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

from sdg.design import ORDER_WORDS, RowDesign, references, render
from sdg.given import GivenRow

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


# The schema in words stays within this many characters; the grammar carries the rest.
MAX_FIELD_TEXT = 4000
CONSTRAINTS = ("format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "pattern",
               "minLength", "maxLength", "minItems", "maxItems")


def describe_field(name: str, spec: dict[str, Any], schema: dict[str, Any], required: bool = True, design: RowDesign | None = None) -> str:
    """One line of the prompt's field list: the field's type and constraints, then what the
    schema says of it (description, examples, default) and the design's rules for it."""
    line = f"- {name}{'' if required else ' (optional)'}: {type_words(spec, schema.get('$defs', {}), 2)}"
    node = _resolved(spec, schema.get("$defs", {}))
    notes = [node[key] for key in ("title", "description") if isinstance(node.get(key), str) and _says_more(node[key], name)]
    examples = node.get("examples")
    if isinstance(examples, list) and examples:
        notes.append("e.g. " + ", ".join(json.dumps(e, ensure_ascii=False) for e in examples[:2]))
    if "default" in node and node["default"] is not None:
        notes.append(f"default {json.dumps(node['default'], ensure_ascii=False)}")
    named = references(node["description"]) if isinstance(node.get("description"), str) else []
    if named:
        notes.append(f"{{field}} is this row's value of that field, written before {name}")
    for rule in design.rules if design else ():
        if rule.name == name:
            notes.append(f"must be {ORDER_WORDS[rule.key]} {rule.other} (written before it)")
    if notes:
        line += " — " + "; ".join(notes)
    return line


def _says_more(text: str, name: str) -> bool:
    """A title that only repeats the field's name ("Street" for street) says nothing."""
    def plain(s: str) -> str:
        return "".join(c for c in s.lower() if c.isalnum())
    return bool(text.strip()) and plain(text) != plain(name)


def _resolved(spec: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    seen = 0
    while "$ref" in spec and seen < 16:
        spec = {**defs[spec["$ref"].rsplit("/", 1)[1]], **{k: v for k, v in spec.items() if k != "$ref"}}
        seen += 1
    return spec


def type_words(spec: dict[str, Any], defs: dict[str, Any], depth: int) -> str:
    """A short account of a value's type: "string, maxLength 48", "object {city, zip?}",
    "list of Address", "one of ["a", "b"]"."""
    if "$ref" in spec:
        name = spec["$ref"].rsplit("/", 1)[1]
        target = defs[name]
        title = target.get("title") if isinstance(target.get("title"), str) else name.split("_")[0]
        return f"{title} ({type_words(target, defs, depth)})" if depth > 0 else title
    if "anyOf" in spec:
        return " or ".join(type_words(branch, defs, depth - 1) for branch in spec["anyOf"])
    if "enum" in spec:
        values = spec["enum"]
        shown = ", ".join(json.dumps(v, ensure_ascii=False) for v in values[:12])
        return f"enum [{shown}{', …' if len(values) > 12 else ''}]"
    types = spec.get("type")
    if types is None:
        return "any JSON value"
    kind = types if isinstance(types, str) else "/".join(types)
    details = [kind]
    if "object" in kind and depth > 0:
        required = set(spec.get("required", []))
        keys = [k + ("" if k in required else "?") for k in spec.get("properties", {})]
        if spec.get("additionalProperties") or spec.get("patternProperties"):
            keys.append("…")
        details = [f"{kind} {{{', '.join(keys)}}}"] if keys else details
    if "array" in kind and spec.get("items") is not None:
        details = [f"list of {type_words(spec['items'], defs, depth - 1)}"]
    for key in CONSTRAINTS:
        if key in spec:
            details.append(f"{key} {json.dumps(spec[key])}")
    return ", ".join(details)


def field_list(schema: dict[str, Any], design: RowDesign | None = None) -> str:
    """The prompt's field list, cut where it would pass MAX_FIELD_TEXT characters."""
    required = set(schema.get("required", []))
    lines, size = [], 0
    names = list(schema["properties"])
    for i, name in enumerate(names):
        line = describe_field(name, schema["properties"][name], schema, name in required, design)
        if size + len(line) > MAX_FIELD_TEXT and lines:
            lines.append(f"- and {len(names) - i} more fields")
            break
        lines.append(line)
        size += len(line) + 1
    return "\n".join(lines)


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


def row_line(seed: int, slot: int, templates: dict[str, str], known: dict[str, Any]) -> str:
    """A row's own line: its number and theme word, and its conditioned fields in its values."""
    number, hint = row_hint(seed, slot)
    line = f"Row #{number}, theme '{hint}'."
    if templates:
        line += " " + "; ".join(f"{name}: {render(text, known)}" for name, text in templates.items()) + "."
    return line


def given_line(given: GivenRow) -> str:
    """A row's given values and context: ` It holds {"customer_id": 7}. It belongs to {"id": 7, ...}.`"""
    line = ""
    if given.texts:
        line += " It holds {" + ", ".join(f"{json.dumps(name, ensure_ascii=False)}: {text}" for name, text in given.texts.items()) + "}."
    if given.context:
        line += f" It belongs to {given.context}."
    return line


def build_prompts(tokenizer, schema: dict[str, Any], instructions: str, seed: int, slots: list[int],
                  given: list[GivenRow] | None = None, examples: tuple[dict[str, Any], ...] = (),
                  design: RowDesign | None = None, known: list[dict[str, Any]] | None = None) -> WavePrompts:
    """`given`: per slot, the values that row holds (as JSON text); `examples`: rows to show;
    `design`: the schema's cross-field design; `known`: each slot's values known before decoding
    (sampled, given), which its conditioned descriptions are rendered with."""
    user = f"Write one row of data with these fields:\n{field_list(schema, design)}\n"
    about = [schema[key] for key in ("title", "description") if isinstance(schema.get(key), str)]
    if about:
        user += f"The data describes: {': '.join(about)}\n"
    if examples:
        user += "Rows like these:\n" + "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in examples)
    if instructions:
        user += f"{instructions}\n"
    # Everything rows share stays here, in the prefix that is prefilled once per wave; each row's
    # own line is kept short, since every token of it is prefilled for every row.
    user += "Use realistic, varied values, and let each row draw on its theme word.\n"
    if given:
        user += "Each row keeps the values it holds, and its other fields fit them.\n"
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user + _ROW_LINE}]
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    head, tail = text.split(_ROW_LINE)
    templates = {n: t for n, t in design.conditioned.items() if n in schema["properties"]} if design else {}
    lines = [row_line(seed, slot, templates, known[i] if known else {}) + (given_line(given[i]) if given else "") + tail
             for i, slot in enumerate(slots)]
    # One batched call: a fast tokenizer encodes the wave's lines in parallel (83 ms for 1,024
    # lines one call at a time, with the 151k-token bench tokenizer).
    suffixes = tokenizer(lines, add_special_tokens=False)["input_ids"]
    return WavePrompts(tokenizer(head, add_special_tokens=False)["input_ids"], suffixes)
