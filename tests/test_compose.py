"""The container setup, checked without a Docker engine: docker-compose.yml (alone and with
docker-compose.scale.yml) as `docker-compose config` resolves it, the Dockerfiles' promises (no torch in the gateway image, and a package list that
covers what the gateway imports), and `python -m sdg.healthcheck` against real gRPC servers."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from concurrent import futures
from importlib import metadata
from pathlib import Path
from urllib.parse import urlsplit

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from image_service.settings import DEFAULT_IMAGE_MODEL
from text_service.settings import DEFAULT_TEXT_MODEL

yaml = pytest.importorskip("yaml", reason="PyYAML reads docker-compose config's output")

REPO = Path(__file__).resolve().parents[1]
MODEL_SERVICES = {"text": 50051, "image": 50052}
HEAVY = {"torch", "transformers", "diffusers", "accelerate", "xgrammar", "safetensors", "tokenizers"}


def compose_config(*files: str, **env: str) -> dict:
    """The merged configuration of `files` (docker-compose.yml alone by default)."""
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (Debian: apt-get install docker-compose)")
    # The caller's SDG_* variables would override the file's defaults, which are what is checked.
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SDG_")}
    file_args = [arg for f in files or ("docker-compose.yml",) for arg in ("--file", str(REPO / f))]
    proc = subprocess.run(
        [binary, *file_args, "config"],
        cwd=REPO, env={**clean, **env}, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, f"docker-compose config failed:\n{proc.stderr}"
    return yaml.safe_load(proc.stdout)


@pytest.fixture(scope="module")
def config() -> dict:
    return compose_config()


def seconds(duration: str) -> float:
    """A compose duration ("30m", "1m30s", "15s") in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"unparsed duration {duration!r}"
    return sum(float(n) * units[u] for n, u in parts)


def mounts(service: dict) -> dict[str, str]:
    """{volume name: container path} of a service's named-volume mounts, in either syntax."""
    out = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume["source"], volume["target"]
        out[source] = target
    return out


def test_three_services_built_from_the_repo_root_and_postgres_only_when_asked(config):
    always = {name for name, service in config["services"].items() if not service.get("profiles")}
    assert always == {"text", "image", "gateway"}
    assert config["services"]["postgres"]["profiles"] == ["postgres"]
    for name, dockerfile in [("text", "text_service"), ("image", "image_service"), ("gateway", "gateway")]:
        build = config["services"][name]["build"]
        assert Path(build["context"]).resolve() == REPO
        assert build["dockerfile"] == f"{dockerfile}/Dockerfile"
        assert (REPO / build["dockerfile"]).is_file()


def test_model_services_reserve_one_nvidia_gpu_and_the_gateway_none(config):
    for name in MODEL_SERVICES:
        devices = config["services"][name]["deploy"]["resources"]["reservations"]["devices"]
        assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert "deploy" not in config["services"]["gateway"]


def test_model_services_listen_where_the_gateway_looks_and_default_to_the_real_models(config):
    text = config["services"]["text"]["environment"]
    image = config["services"]["image"]["environment"]
    gateway = config["services"]["gateway"]["environment"]
    assert text["SDG_TEXT_MODEL"] == DEFAULT_TEXT_MODEL
    assert image["SDG_IMAGE_MODEL"] == DEFAULT_IMAGE_MODEL
    assert text["SDG_TEXT_LISTEN"] == "0.0.0.0:50051"
    assert image["SDG_IMAGE_LISTEN"] == "0.0.0.0:50052"
    assert gateway["SDG_TEXT_SERVICE_ADDRS"] == "text:50051"
    assert gateway["SDG_IMAGE_SERVICE_ADDRS"] == "image:50052"


def test_model_ids_can_be_overridden_from_the_shell():
    config = compose_config(SDG_TEXT_MODEL="tiny", SDG_IMAGE_MODEL="tiny")
    assert config["services"]["text"]["environment"]["SDG_TEXT_MODEL"] == "tiny"
    assert config["services"]["image"]["environment"]["SDG_IMAGE_MODEL"] == "tiny"


def test_named_volumes_hold_the_model_cache_and_the_generated_data(config):
    assert {"model-cache", "generated_data"} <= set(config["volumes"])
    for name in MODEL_SERVICES:
        service = config["services"][name]
        assert mounts(service)["model-cache"] == service["environment"]["MODEL_CACHE_DIR"]
        # Compiled kernels outlive the container, as the weights do.
        assert service["environment"]["TORCHINDUCTOR_CACHE_DIR"].startswith(service["environment"]["MODEL_CACHE_DIR"] + "/")
    gateway = config["services"]["gateway"]
    data_mount = mounts(gateway)["generated_data"]
    output_dir = gateway["environment"]["SDG_OUTPUT_DIR"]
    assert output_dir == data_mount or output_dir.startswith(data_mount.rstrip("/") + "/")


def test_model_services_are_healthy_only_when_grpc_health_says_serving(config):
    for name, port in MODEL_SERVICES.items():
        check = config["services"][name]["healthcheck"]
        assert check["test"] == ["CMD", "python", "-m", "sdg.healthcheck", f"localhost:{port}"]
        # Long enough for the first start to download the weights.
        assert seconds(check["start_period"]) >= 15 * 60


def test_gateway_waits_for_healthy_model_services_and_publishes_port_8000(config):
    gateway = config["services"]["gateway"]
    assert gateway["depends_on"] == {
        "text": {"condition": "service_healthy"},
        "image": {"condition": "service_healthy"},
    }
    ports = gateway["ports"]
    assert len(ports) == 1
    port = ports[0]
    published, target = (port.split(":") if isinstance(port, str) else (port["published"], port["target"]))
    assert (int(published), int(target)) == (8000, 8000)
    assert gateway["environment"]["UVICORN_PORT"] == "8000"


def test_gateway_defaults_to_sqlite_and_same_origin(config):
    gateway = config["services"]["gateway"]["environment"]
    assert gateway["SDG_DATABASE_URL"] == ""
    assert gateway["SDG_CORS_ORIGINS"] == ""
    assert "SDG_RESUME_INTERRUPTED" not in gateway


def test_postgres_is_healthy_when_it_accepts_connections_and_keeps_its_data_on_a_volume(config):
    postgres = config["services"]["postgres"]
    assert postgres["image"] == "postgres:16"
    environment = postgres["environment"]
    assert postgres["healthcheck"]["test"] == [
        "CMD", "pg_isready", "-U", environment["POSTGRES_USER"], "-d", environment["POSTGRES_DB"]
    ]  # fmt: skip
    assert mounts(postgres)["postgres-data"] == "/var/lib/postgresql/data"
    assert "postgres-data" in config["volumes"]
    assert "ports" not in postgres


# --- docker-compose.scale.yml --------------------------------------------------------------------

SECOND = {"text": "text-2", "image": "image-2"}


@pytest.fixture(scope="module")
def scale() -> dict:
    return compose_config("docker-compose.yml", "docker-compose.scale.yml")


def gpu_devices(service: dict) -> list[dict]:
    return service["deploy"]["resources"]["reservations"]["devices"]


@pytest.mark.parametrize("env", [{}, {"SDG_TEXT_MODEL": "tiny", "SDG_IMAGE_MODEL": "tiny"}], ids=["defaults", "tiny"])
def test_second_replicas_are_configured_like_the_first_on_the_second_gpu(env):
    services = compose_config("docker-compose.yml", "docker-compose.scale.yml", **env)["services"]
    for first, second in SECOND.items():
        a, b = services[first], services[second]
        for key in ("build", "environment", "volumes", "healthcheck", "expose", "restart"):
            assert a[key] == b[key], f"{second}.{key} differs from {first}.{key}"
        assert gpu_devices(a) == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
        assert gpu_devices(b) == [{"driver": "nvidia", "device_ids": ["1"], "capabilities": ["gpu"]}]


def test_scale_gateway_spreads_over_both_replicas_and_keeps_jobs_in_postgres(scale):
    gateway = scale["services"]["gateway"]
    environment = gateway["environment"]
    for kind, port in MODEL_SERVICES.items():
        addresses = environment[f"SDG_{kind.upper()}_SERVICE_ADDRS"].split(",")
        assert addresses == [f"{kind}:{port}", f"{SECOND[kind]}:{port}"]
    assert gateway["depends_on"] == {
        name: {"condition": "service_healthy"} for name in ("text", "image", "text-2", "image-2", "postgres")
    }
    url = urlsplit(environment["SDG_DATABASE_URL"])
    postgres = scale["services"]["postgres"]["environment"]
    assert url.scheme == "postgresql+psycopg"
    assert (url.hostname, url.port) == ("postgres", 5432)
    assert (url.username, url.password, url.path) == (
        postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"], "/" + postgres["POSTGRES_DB"]
    )  # fmt: skip


def test_dockerignore_keeps_local_state_out_of_the_build_context():
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()}
    assert {".venv", "model_cache", "generated_data", ".cache", ".git"} <= ignored


def test_model_service_images_start_from_an_official_pytorch_cuda_runtime():
    for name in ("text_service", "image_service"):
        dockerfile = (REPO / name / "Dockerfile").read_text()
        assert re.search(r"^FROM pytorch/pytorch:[\w.]+-cuda[\w.]+-cudnn\d+-runtime$", dockerfile, re.M)
        assert f'CMD ["python", "-m", "{name}"]' in dockerfile


# --- the gateway image ---------------------------------------------------------------------------

def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def gateway_requirements() -> list[str]:
    """The requirement strings of the gateway Dockerfile's `pip install`."""
    dockerfile = (REPO / "gateway" / "Dockerfile").read_text()
    block = re.search(r"^RUN pip install((?:.*\\\n)*.*)$", dockerfile, re.M)
    assert block, "gateway/Dockerfile has no `RUN pip install` line"
    return re.findall(r'"([^"]+)"', block.group(1))


def installed_closure(requirements: list[str]) -> set[str]:
    """Distributions those requirements install, following dependencies (with extras) through the
    metadata of this environment's installed copies."""
    from packaging.requirements import Requirement

    seen: set[tuple[str, frozenset[str]]] = set()
    names: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        key = (canonical(req.name), frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        names.add(key[0])
        try:
            requires = metadata.requires(req.name) or []
        except metadata.PackageNotFoundError:
            continue  # a platform-only dependency (say, for Windows) that this machine lacks
        for dep in map(Requirement, requires):
            extras = [""] + sorted(req.extras)
            if dep.marker is None or any(dep.marker.evaluate({"extra": e}) for e in extras):
                todo.append(dep)
    return names


# Imports every gateway module (not __main__, which starts the server) with every installed package
# outside the gateway image made unimportable, as it would be in that image. Optional imports that
# libraries guard with `except ImportError` (grpc tries grpc_tools) are then just absent, as there.
IMPORT_GATEWAY = """
import importlib, json, pkgutil, sys
BLOCKED = set(json.loads(sys.argv[1]))
class NotInImage:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is not installed in the gateway image")
sys.meta_path.insert(0, NotInImage())
import gateway
for info in pkgutil.walk_packages(gateway.__path__, "gateway."):
    if not info.name.endswith("__main__"):
        importlib.import_module(info.name)
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} & BLOCKED)))
"""


def test_gateway_image_installs_no_torch_and_everything_the_gateway_imports():
    closure = installed_closure(gateway_requirements())
    assert not HEAVY & closure, f"the gateway image would install {sorted(HEAVY & closure)}"

    # The project's own distribution (there after `pip install -e .`) maps to gateway/, sdg/ and
    # the model services; the image copies only gateway/ and sdg/.
    not_in_image = sorted(
        {
            module
            for module, dists in metadata.packages_distributions().items()
            if not {canonical(d) for d in dists} & closure
        }
        - {"gateway", "sdg"}
        | {"text_service", "image_service"}
    )
    assert "torch" in not_in_image  # installed here, so it must be what the blocker refuses
    proc = subprocess.run(
        [sys.executable, "-c", IMPORT_GATEWAY, json.dumps(not_in_image)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, f"the gateway does not import with only its image's packages:\n{proc.stderr[-3000:]}"
    # Modules loaded before the blocker was in place (site hooks such as setuptools' _distutils_hack)
    # are the interpreter's, not the gateway's.
    leaked = set(json.loads(proc.stdout)) - set(json.loads(subprocess.run(
        [sys.executable, "-c", "import json, sys; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True,
    ).stdout))
    assert not leaked, f"imported despite the blocker: {sorted(leaked)}"


# --- sdg.healthcheck -----------------------------------------------------------------------------

def run_healthcheck(address: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sdg.healthcheck", address, "--timeout", "5"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )


def test_healthcheck_exits_0_for_the_serving_text_service(text_service):
    proc = run_healthcheck(text_service.address)
    assert proc.returncode == 0, proc.stderr
    assert "SERVING" in proc.stdout


def test_healthcheck_fails_for_a_dead_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # The socket is closed again: nothing listens on the port.
    proc = run_healthcheck(f"127.0.0.1:{port}")
    assert proc.returncode != 0
    assert "UNAVAILABLE" in proc.stderr


def test_healthcheck_fails_while_a_server_reports_not_serving():
    """What a model service says while its model loads: up, but not ready for the gateway."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        proc = run_healthcheck(f"127.0.0.1:{port}")
        assert proc.returncode != 0
        assert "NOT_SERVING" in proc.stderr
        servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        assert run_healthcheck(f"127.0.0.1:{port}").returncode == 0
    finally:
        server.stop(None)
