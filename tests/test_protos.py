"""The generated code in sdg/v1 must be exactly what `python protos/generate.py` produces."""

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _load_generator():
    spec = importlib.util.spec_from_file_location("protos_generate", REPO / "protos" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_code_is_fresh(tmp_path):
    written = _load_generator().generate(tmp_path)
    assert written, "protoc wrote nothing"
    committed = sorted(p.name for p in (REPO / "sdg" / "v1").glob("*_pb2*.py*"))
    assert committed == sorted(p.name for p in written), "run `make protos`: the set of generated files changed"
    for fresh in written:
        current = REPO / "sdg" / "v1" / fresh.name
        assert current.read_text() == fresh.read_text(), f"{current} is stale: run `make protos`"


def test_every_rpc_and_field_has_a_comment():
    for proto in (REPO / "protos" / "sdg" / "v1").glob("*.proto"):
        lines = proto.read_text().splitlines()
        for i, line in enumerate(lines):
            stripped = line.strip()
            is_rpc = stripped.startswith("rpc ")
            is_field = stripped.endswith(";") and "=" in stripped and not stripped.startswith(("syntax", "option"))
            if is_rpc or is_field:
                assert lines[i - 1].strip().startswith("//"), f"{proto.name}:{i + 1} has no comment: {stripped}"
