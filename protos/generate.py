"""Generates the Python gRPC code in `sdg/v1/` from `protos/sdg/v1/*.proto`: the one command.

    python protos/generate.py            # writes into the repository root (sdg/v1/...)
    python protos/generate.py --out DIR  # writes elsewhere (the staleness test uses this)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grpc_tools import protoc

PROTO_ROOT = Path(__file__).resolve().parent
REPO_ROOT = PROTO_ROOT.parent


def generate(out_dir: Path) -> list[Path]:
    protos = sorted(PROTO_ROOT.glob("sdg/v1/*.proto"))
    include = Path(protoc.__file__).parent / "_proto"
    out_dir.mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *(str(p.relative_to(PROTO_ROOT)) for p in protos),
    ]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed: " + " ".join(args))
    for package in (out_dir / "sdg", out_dir / "sdg" / "v1"):
        init = package / "__init__.py"
        if not init.exists():
            init.write_text("")
    return sorted((out_dir / "sdg" / "v1").glob("*_pb2*.py*"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT)
    written = generate(parser.parse_args().out)
    print(f"generated {len(written)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
