"""Schema coverage: how many real-world schemas the text engine accepts, and whether the rows it
writes for them are valid. Runs the tiny demo model on the CPU; what it measures is the schema
layer (normalization, grammar, bounds), not the model.

For each schema of a corpus (default tests/schema_corpus: one folder per kind, plus the Pydantic
models of tests/schema_corpus/pydantic_models.py dumped with model_json_schema(), kind `pydantic`):
1. `engine.prepare(schema)`, timed on first sight: the grammar compile time;
2. a SchemaError from it is a refusal, grouped by the keyword or limit it names; any other
   exception is a crash, listed, and the run goes on;
3. `engine.generate` for `--rows` rows under a wall-clock bound (`--timeout`, through the
   `cancelled` callback); a schema past it is hung;
4. every row is validated against the schema as submitted, with the validator its `$schema`
   names (default 2020-12) and that validator's format checker. A row the engine wraps as
   {"value": ...} (its prepared schema says so; without that flag, a root whose type is not
   "object") has its "value" validated.

    python bench/schema_coverage.py                          # the committed corpus
    python bench/schema_coverage.py --corpus /work/devcorpus --limit 20 --json out.json

Each schema's result is printed as a JSON line as soon as it is known; then one table per kind
and a total line. `--json` writes every per-schema record and the tables.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import math
import re
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from jsonschema.exceptions import SchemaError as ValidatorSchemaError  # noqa: E402
from jsonschema.exceptions import UnknownType  # noqa: E402

from sdg.schema import SchemaError, format_checker, validator_class  # noqa: E402
from text_service.engine import RequestError, RowBatch, RowRequest, TextEngine  # noqa: E402
from text_service.server import load_engine  # noqa: E402
from text_service.settings import TextSettings  # noqa: E402

DEFAULT_CORPUS = REPO / "tests" / "schema_corpus"
# Keywords a refusal can name, longest first so "$dynamicRef" wins over "$ref" in a message.
KEYWORDS = sorted(
    {
        "$ref", "$defs", "definitions", "$id", "id", "$anchor", "$dynamicRef", "$dynamicAnchor", "$recursiveRef",
        "allOf", "anyOf", "oneOf", "not", "if", "then", "else", "dependentSchemas", "dependentRequired", "dependencies",
        "prefixItems", "items", "additionalItems", "contains", "minContains", "maxContains", "properties",
        "patternProperties", "additionalProperties", "propertyNames", "unevaluatedItems", "unevaluatedProperties",
        "type", "enum", "const", "multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum",
        "maxLength", "minLength", "pattern", "maxItems", "minItems", "uniqueItems", "maxProperties", "minProperties",
        "required", "format", "contentEncoding", "contentMediaType", "contentSchema", "discriminator",
    },
    key=len,
    reverse=True,
)
KEYWORD_IN_TEXT = re.compile(r"(?<![\w$])(" + "|".join(re.escape(k) for k in KEYWORDS) + r")(?!\w)")
LIMITS_IN_TEXT = (("bytes", "limit:bytes"), ("properties in all", "limit:properties"), ("levels deep", "limit:depth"))


@dataclass
class Entry:
    kind: str
    name: str
    schema: Any


@dataclass
class Outcome:
    kind: str
    name: str
    status: str  # accepted | refused | crashed | hung (running while measured)
    reason: str = ""  # the refusal's keyword or limit; the crash's exception type
    message: str = ""
    compile_s: float | None = None
    rows: int = 0
    rows_valid: int = 0
    all_valid: bool = False
    rows_regenerated: int = 0
    wrapped: bool | None = None  # the engine writes each row as {"value": ...}
    root_is_object: bool = False
    summary_reason: str = ""
    rejected_by: dict[str, int] = field(default_factory=dict)
    invalid_examples: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0


def load_corpus(dirs: list[Path]) -> list[Entry]:
    """Schemas of each corpus folder: DIR/<kind>/*.json, DIR/*.json (kind: DIR's name), and the
    models of DIR/pydantic_models.py when there is one. Folders named _* or .* are skipped."""
    entries: list[Entry] = []
    for root in dirs:
        for path in sorted(root.glob("*.json")):
            entries.append(Entry(root.name, path.stem, json.loads(path.read_text())))
        for kind_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))):
            for path in sorted(kind_dir.glob("*.json")):
                entries.append(Entry(kind_dir.name, path.stem, json.loads(path.read_text())))
        models_file = root / "pydantic_models.py"
        if models_file.exists():
            spec = importlib.util.spec_from_file_location(f"corpus_models_{abs(hash(root))}", models_file)
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module  # pydantic resolves the models' forward references through it
            spec.loader.exec_module(module)
            for name, model in module.MODELS.items():
                entries.append(Entry("pydantic", name, model.model_json_schema()))
    return entries


def refusal_reason(err: Exception) -> str:
    """The keyword or limit a refusal names: the last keyword of its pointer, else a limit or the
    first keyword its message names, else the message without its numbers."""
    pointer = getattr(err, "pointer", "") or ""
    for segment in reversed(pointer.split("/")):
        if segment in KEYWORDS:
            return segment
    text = getattr(err, "reason", None) or str(err)
    if "over the limit" in text:
        for marker, label in LIMITS_IN_TEXT:
            if marker in text:
                return label
        return "limit"
    if isinstance(err, RequestError):
        return "request:" + text.split(":", 1)[0]
    found = KEYWORD_IN_TEXT.search(text)
    if found:
        return found.group(1)
    return re.sub(r"\d[\d,.]*", "N", text)[:60]


def validator_of(schema: Any):
    if not isinstance(schema, dict):
        return None
    cls = validator_class(schema)
    return cls(schema, format_checker=format_checker(cls))


def root_is_object(schema: Any) -> bool:
    root_type = schema.get("type") if isinstance(schema, dict) else None
    return root_type == "object" or root_type == ["object"]


def row_instance(row: Any, schema: Any, wrapped: bool | None) -> Any:
    if wrapped is None:
        wrapped = not root_is_object(schema)
    if wrapped and isinstance(row, dict) and set(row) == {"value"}:
        return row["value"]
    return row


def row_problem(validator, text: str, schema: Any, wrapped: bool | None) -> str:
    """Why a row is not valid against the submitted schema; empty when it is."""
    try:
        row = json.loads(text)
    except ValueError as exc:
        return f"not JSON: {exc}"
    if validator is None:
        return ""
    try:
        error = next(iter(validator.iter_errors(row_instance(row, schema, wrapped))), None)
    except (UnknownType, ValidatorSchemaError, ValueError, TypeError) as exc:  # the schema itself breaks the validator
        return f"validator failed: {type(exc).__name__}: {str(exc).splitlines()[0]}"
    if error is None:
        return ""
    where = "/".join(str(p) for p in error.absolute_path)
    return f"{error.validator} at /{where}: {error.message[:160]}"


def measure(engine: TextEngine, entry: Entry, args: argparse.Namespace, outcome: Outcome) -> None:
    """Fills `outcome` for one schema; runs in a worker thread so a hang can be abandoned."""
    started = time.perf_counter()
    deadline = started + args.timeout
    try:
        compiling = time.perf_counter()
        prepared = engine.prepare(entry.schema)
        outcome.compile_s = time.perf_counter() - compiling
        outcome.wrapped = getattr(getattr(prepared, "read", None), "wrapped", None)
    except SchemaError as exc:
        outcome.status, outcome.reason, outcome.message = "refused", refusal_reason(exc), str(exc)
        return
    except Exception as exc:  # noqa: BLE001 - a bench lists a crash and goes on
        outcome.status, outcome.reason, outcome.message = "crashed", type(exc).__name__, f"prepare: {exc}"[:500]
        return
    request = RowRequest(schema=entry.schema, num_rows=args.rows, seed=args.seed, max_new_tokens=args.max_new_tokens)
    texts: list[str] = []
    try:
        summary = engine.generate(
            request, lambda event: isinstance(event, RowBatch) and texts.extend(event.rows), lambda: time.perf_counter() > deadline
        )
    except (SchemaError, RequestError) as exc:
        outcome.status, outcome.reason, outcome.message = "refused", refusal_reason(exc), str(exc)
        return
    except Exception as exc:  # noqa: BLE001 - a bench lists a crash and goes on
        outcome.status, outcome.reason, outcome.message = "crashed", type(exc).__name__, f"generate: {exc}"[:500]
        return
    outcome.rows = len(texts)
    if summary is not None:
        outcome.rows_regenerated = summary.rows_invalid
        outcome.summary_reason = summary.reason
        outcome.rejected_by = dict(getattr(summary, "rejected_by", {}) or {})
        if summary.reason == "cancelled" and time.perf_counter() > deadline:
            outcome.status, outcome.message = "hung", f"past {args.timeout:g} s, {len(texts)} rows written"
    validator = validator_of(entry.schema)
    for text in texts:
        problem = row_problem(validator, text, entry.schema, outcome.wrapped)
        if problem:
            if len(outcome.invalid_examples) < 3:
                outcome.invalid_examples.append(problem)
        else:
            outcome.rows_valid += 1
    outcome.all_valid = outcome.rows == args.rows and outcome.rows_valid == args.rows
    if outcome.status == "running":
        outcome.status = "accepted"


def run_one(engine: TextEngine, entry: Entry, args: argparse.Namespace) -> Outcome:
    outcome = Outcome(entry.kind, entry.name, status="running", root_is_object=root_is_object(entry.schema))
    started = time.perf_counter()
    worker = threading.Thread(target=measure, args=(engine, entry, args, outcome), daemon=True)
    worker.start()
    # generate() stops at the deadline by itself; the grace covers prepare(), which cannot be cancelled.
    worker.join(args.timeout + args.grace)
    if worker.is_alive():
        # The abandoned worker may still write to `outcome`; report a copy it cannot touch.
        outcome = Outcome(entry.kind, entry.name, status="hung", compile_s=outcome.compile_s,
                          message=f"no answer {args.timeout + args.grace:g} s after start (abandoned)")
    outcome.elapsed_s = time.perf_counter() - started
    return outcome


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def tabulate(outcomes: list[Outcome]) -> dict[str, Any]:
    by_kind: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        by_kind[o.kind].append(o)
    tables = {}
    for kind, group in sorted(by_kind.items()) + [("TOTAL", outcomes)]:
        compiles = [o.compile_s for o in group if o.compile_s is not None and o.status != "refused"]
        tables[kind] = {
            "schemas": len(group),
            "accepted": sum(o.status == "accepted" for o in group),
            "all_rows_valid": sum(o.all_valid for o in group),
            "refused": sum(o.status == "refused" for o in group),
            "refused_by": dict(Counter(o.reason for o in group if o.status == "refused").most_common()),
            "crashed": sum(o.status == "crashed" for o in group),
            "hung": sum(o.status == "hung" for o in group),
            "compile_p50_s": percentile(compiles, 0.5),
            "compile_p99_s": percentile(compiles, 0.99),
        }
    return tables


def print_report(tables: dict[str, Any], outcomes: list[Outcome]) -> None:
    def seconds(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}"

    head = f"{'kind':<18}{'schemas':>8}{'accepted':>10}{'all valid':>11}{'refused':>9}{'crashed':>9}{'hung':>6}{'p50 s':>8}{'p99 s':>8}"
    print(head)
    print("-" * len(head))
    for kind, t in tables.items():
        if kind == "TOTAL":
            print("-" * len(head))
        print(f"{kind:<18}{t['schemas']:>8}{t['accepted']:>10}{t['all_rows_valid']:>11}{t['refused']:>9}{t['crashed']:>9}"
              f"{t['hung']:>6}{seconds(t['compile_p50_s']):>8}{seconds(t['compile_p99_s']):>8}")
    print("\nrefused, by the keyword or limit named:")
    for kind, t in tables.items():
        if t["refused_by"]:
            print(f"  {kind}: " + ", ".join(f"{reason} {n}" for reason, n in t["refused_by"].items()))
    for status in ("crashed", "hung"):
        listed = [o for o in outcomes if o.status == status]
        if listed:
            print(f"\n{status}:")
            for o in listed:
                print(f"  {o.kind}/{o.name}: {o.reason} {o.message}".rstrip())
    wrapped_objects = [o for o in outcomes if o.wrapped and o.root_is_object]
    if wrapped_objects:
        print("\nrows written as {\"value\": ...} although the root's type is object:")
        print("  " + ", ".join(f"{o.kind}/{o.name}" for o in wrapped_objects))
    accepted_invalid = [o for o in outcomes if o.status == "accepted" and not o.all_valid]
    if accepted_invalid:
        print("\naccepted, but not every row valid:")
        for o in accepted_invalid:
            detail = "; ".join(o.invalid_examples) or f"{o.rows} rows ({o.summary_reason})"
            print(f"  {o.kind}/{o.name}: {o.rows} rows, {o.rows_valid} valid: {detail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, nargs="+", default=[DEFAULT_CORPUS], help="corpus folders")
    parser.add_argument("--rows", type=int, default=3, help="rows to generate per schema")
    parser.add_argument("--max-new-tokens", type=int, default=512)
    parser.add_argument("--limit", type=int, default=0, help="at most this many schemas of each kind (0: all)")
    parser.add_argument("--kind", nargs="+", default=None, help="only these kinds")
    parser.add_argument("--timeout", type=float, default=60.0, help="wall-clock bound per schema, seconds")
    parser.add_argument("--grace", type=float, default=30.0, help="seconds past the bound before a schema is abandoned")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", type=Path, default=REPO / "model_cache", help="tiny model cache (tests use .cache/test-models)")
    parser.add_argument("--json", type=Path, default=None, help="write every per-schema record and the tables here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    entries = load_corpus(args.corpus)
    if args.kind:
        entries = [e for e in entries if e.kind in args.kind]
    if args.limit:
        seen: Counter[str] = Counter()
        kept = []
        for e in entries:
            seen[e.kind] += 1
            if seen[e.kind] <= args.limit:
                kept.append(e)
        entries = kept

    started = time.perf_counter()
    engine = load_engine(TextSettings(model="tiny", model_cache_dir=args.cache_dir, device="cpu"))
    print(json.dumps({"phase": "load", "schemas": len(entries), "wall_s": round(time.perf_counter() - started, 2)}), flush=True)

    outcomes = []
    for entry in entries:
        outcome = run_one(engine, entry, args)
        outcomes.append(outcome)
        line = {k: v for k, v in asdict(outcome).items() if v not in ("", [], {}, None)}
        if "compile_s" in line:
            line["compile_s"] = round(line["compile_s"], 3)
        line["elapsed_s"] = round(outcome.elapsed_s, 2)
        print(json.dumps(line), flush=True)

    tables = tabulate(outcomes)
    print()
    print_report(tables, outcomes)
    print(f"\nwall {time.perf_counter() - started:.0f} s for {len(outcomes)} schemas")
    if args.json:
        args.json.write_text(json.dumps({"tables": tables, "schemas": [asdict(o) for o in outcomes]}, indent=2) + "\n")


if __name__ == "__main__":
    main()
