"""The Kubernetes manifests under deploy/, checked offline: rendered as `kubectl apply -k` would
(for the few kustomize fields they use), validated against the Kubernetes schemas, and held to what
the components read."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from image_service.settings import DEFAULT_IMAGE_MODEL
from sdg.env import KNOWN
from tests.test_compose import compose_config
from text_service.settings import DEFAULT_TEXT_MODEL

yaml = pytest.importorskip("yaml")
kubernetes_validate = pytest.importorskip("kubernetes_validate")

REPO = Path(__file__).resolve().parents[1]
BASE = REPO / "deploy"
POSTGRES = REPO / "deploy" / "postgres"
# The oldest release with gRPC probes (GA in 1.27), and the newest the package has schemas for.
KUBERNETES_VERSIONS = ["1.27", kubernetes_validate.latest_version()]
# Names the manifests set that sdg/env.py does not list yet; they move there as the components
# learn to read them, and this set goes.
COMING: set[str] = set()
# Secrets the base reads and a team creates (deploy/postgres creates the first for a try-out).
TEAM_SECRETS = {("sdg-database", "url")}
MODEL_SERVICES = {
    "sdg-text": {"grpc": 50051, "metrics": 9101, "model": ("SDG_TEXT_MODEL", DEFAULT_TEXT_MODEL), "dockerfile": "text_service"},
    "sdg-image": {"grpc": 50052, "metrics": 9102, "model": ("SDG_IMAGE_MODEL", DEFAULT_IMAGE_MODEL), "dockerfile": "image_service"},
}  # fmt: skip
WORKLOADS = {"Deployment", "StatefulSet"}


# --- rendering ---------------------------------------------------------------------------------

# The kustomization fields this renderer applies; any other would be silently dropped.
RENDERED_FIELDS = {"apiVersion", "kind", "resources", "images", "replicas"}


def render(directory: Path) -> list[dict]:
    """The manifests `kubectl kustomize directory` prints, for kustomizations of local files with
    `images:` and `replicas:`."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    assert set(kustomization) <= RENDERED_FIELDS, f"the test cannot render {set(kustomization) - RENDERED_FIELDS}"
    manifests = []
    for entry in kustomization["resources"]:
        path = directory / entry
        assert path.is_file(), f"{entry}: the test renders files, not other kustomizations"
        manifests += [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]

    replicas = {r["name"]: r["count"] for r in kustomization.get("replicas", [])}
    images = {i["name"]: i for i in kustomization.get("images", [])}
    unused = set(replicas) | set(images)
    for manifest in workloads(manifests):
        name = manifest["metadata"]["name"]
        if name in replicas:
            manifest["spec"]["replicas"] = replicas[name]
            unused.discard(name)
        for container in containers(manifest):
            image = re.split(r"[:@]", container["image"], maxsplit=1)[0]
            if image in images:
                new = images[image]
                container["image"] = new.get("newName", image) + (
                    f"@{new['digest']}" if "digest" in new else f":{new['newTag']}" if "newTag" in new else ""
                )
                unused.discard(image)
    assert not unused, f"kustomization entries that match nothing: {sorted(unused)}"
    return manifests


def workloads(manifests: list[dict]) -> list[dict]:
    return [m for m in manifests if m["kind"] in WORKLOADS]


def containers(workload: dict) -> list[dict]:
    pod = workload["spec"]["template"]["spec"]
    return pod["containers"] + pod.get("initContainers", [])


def env(container: dict) -> dict[str, dict]:
    """{name: the env entry} of a container."""
    return {e["name"]: e for e in container.get("env", [])}


def find(manifests: list[dict], kind: str, name: str) -> dict:
    matches = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(matches) == 1, f"{len(matches)} {kind}s named {name}"
    return matches[0]


def selected(service: dict, manifests: list[dict]) -> list[dict]:
    """The workloads whose pods a Service selects."""
    selector = service["spec"]["selector"].items()
    return [w for w in workloads(manifests) if selector <= w["spec"]["template"]["metadata"]["labels"].items()]


@pytest.fixture(scope="module")
def base() -> list[dict]:
    return render(BASE)


@pytest.fixture(scope="module")
def postgres() -> list[dict]:
    return render(POSTGRES)


# --- the tests ---------------------------------------------------------------------------------

@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("directory", [BASE, POSTGRES], ids=["base", "postgres"])
def test_every_rendered_manifest_is_valid_kubernetes(directory, version):
    manifests = render(directory)
    assert manifests
    for manifest in manifests:
        # Strict: an unknown field (a misspelt probe, say) is an error, not ignored.
        kubernetes_validate.validate(manifest, version, strict=True)


def test_the_validator_rejects_a_misspelt_field(base):
    """So that the test above can fail."""
    gateway = find(base, "Deployment", "sdg-gateway")
    broken = yaml.safe_load(yaml.safe_dump(gateway))
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"grpc": {"port": 1}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def test_names_are_unique_and_every_reference_resolves(base):
    names = [(m["kind"], m["metadata"]["name"]) for m in base]
    assert len(names) == len(set(names))
    claims = {m["metadata"]["name"] for m in base if m["kind"] == "PersistentVolumeClaim"}
    for workload in workloads(base):
        pod = workload["spec"]["template"]["spec"]
        for volume in pod.get("volumes", []):
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims
        declared = {v["name"] for v in pod.get("volumes", [])} | {
            t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates", [])
        }
        for container in containers(workload):
            assert {m["name"] for m in container.get("volumeMounts", [])} <= declared
            for entry in env(container).values():
                ref = entry.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert (ref["name"], ref["key"]) in TEAM_SECRETS
    for service in (m for m in base if m["kind"] == "Service"):
        [workload] = selected(service, base)
        port_names = {p["name"] for c in containers(workload) for p in c.get("ports", [])}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names


def test_images_are_the_three_built_from_the_dockerfiles_tagged_with_the_project_version(base):
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    dockerfiles = {"sdg-gateway": "gateway", **{n: s["dockerfile"] for n, s in MODEL_SERVICES.items()}}
    for workload in workloads(base):
        [container] = containers(workload)
        name = workload["metadata"]["name"]
        assert container["image"] == f"{name}:{version}"
        assert (REPO / dockerfiles[name] / "Dockerfile").is_file()
    assert {w["metadata"]["name"] for w in workloads(base)} == set(dockerfiles)


def test_model_services_request_a_gpu_and_have_native_grpc_probes(base):
    for name, ports in MODEL_SERVICES.items():
        [container] = containers(find(base, "StatefulSet", name))
        assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
        listen = env(container)[f"SDG_{name.removeprefix('sdg-').upper()}_LISTEN"]["value"]
        assert listen == f"0.0.0.0:{ports['grpc']}"
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"] == {"port": ports["grpc"]}, probe
        startup = container["startupProbe"]
        # Long enough for the first start to download the weights.
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 15 * 60
        assert env(container)["SDG_DEVICE"]["value"] == "cuda"
    [gateway] = containers(find(base, "Deployment", "sdg-gateway"))
    assert "nvidia.com/gpu" not in gateway["resources"].get("limits", {})


def test_model_services_default_to_the_real_models(base):
    for name, service in MODEL_SERVICES.items():
        [container] = containers(find(base, "StatefulSet", name))
        variable, default = service["model"]
        assert env(container)[variable]["value"] == default


def test_gateway_finds_replicas_through_headless_services(base):
    [gateway] = containers(find(base, "Deployment", "sdg-gateway"))
    for name, ports in MODEL_SERVICES.items():
        service = find(base, "Service", name)
        assert service["spec"]["clusterIP"] == "None"
        # Only ready (SERVING) replicas are in DNS.
        assert not service["spec"].get("publishNotReadyAddresses", False)
        assert [w["metadata"]["name"] for w in selected(service, base)] == [name]
        assert find(base, "StatefulSet", name)["spec"]["serviceName"] == name
        assert {p["name"]: p["port"] for p in service["spec"]["ports"]}["grpc"] == ports["grpc"]
        variable = f"SDG_{name.removeprefix('sdg-').upper()}_SERVICE_ADDRS"
        assert env(gateway)[variable]["value"] == f"dns:///{name}:{ports['grpc']}"


def test_model_services_keep_their_model_cache_on_a_volume_of_their_own(base):
    for name in MODEL_SERVICES:
        workload = find(base, "StatefulSet", name)
        [template] = workload["spec"]["volumeClaimTemplates"]
        [container] = containers(workload)
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        cache_dir = env(container)["MODEL_CACHE_DIR"]["value"]
        assert mounts[template["metadata"]["name"]] == cache_dir
        assert env(container)["TORCHINDUCTOR_CACHE_DIR"]["value"].startswith(cache_dir + "/")


def test_several_gateways_share_a_read_write_many_data_volume(base):
    gateway = find(base, "Deployment", "sdg-gateway")
    # Leases let them run side by side, and through a rolling update.
    assert gateway["spec"]["replicas"] >= 2
    assert gateway["spec"].get("strategy", {}).get("type", "RollingUpdate") == "RollingUpdate"
    [service] = [s for s in base if s["kind"] == "Service" and selected(s, base) == [gateway]]
    assert service["spec"].get("clusterIP") != "None"
    [volume] = gateway["spec"]["template"]["spec"]["volumes"]
    claim = find(base, "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    [container] = containers(gateway)
    [mount] = container["volumeMounts"]
    assert (mount["name"], mount["mountPath"]) == (volume["name"], "/data")
    assert env(container)["SDG_OUTPUT_DIR"]["value"] == "/data/generated_data"


def test_the_database_url_comes_from_a_secret(base):
    [gateway] = containers(find(base, "Deployment", "sdg-gateway"))
    variables = env(gateway)
    for variable, secret in [("SDG_DATABASE_URL", ("sdg-database", "url"))]:
        assert "value" not in variables[variable]
        ref = variables[variable]["valueFrom"]["secretKeyRef"]
        assert (ref["name"], ref["key"]) == secret
        # A missing Secret stops the pod rather than starting an open gateway without a database.
        assert not ref.get("optional", False)
    readme = (REPO / "README.md").read_text()
    for name, key in TEAM_SECRETS:
        assert f"secret generic {name} --from-literal={key}=" in readme


def test_the_try_out_postgres_provides_the_database_secret_the_gateway_reads(postgres):
    secret = find(postgres, "Secret", "sdg-database")["stringData"]
    url = urlsplit(secret["url"])
    assert url.scheme == "postgresql+psycopg"
    service = find(postgres, "Service", url.hostname)
    assert url.port == service["spec"]["ports"][0]["port"]
    [container] = containers(find(postgres, "StatefulSet", url.hostname))
    variables = env(container)
    assert url.username == variables["POSTGRES_USER"]["value"]
    assert url.path == "/" + variables["POSTGRES_DB"]["value"]
    password_ref = variables["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert password_ref["name"] == "sdg-database"
    assert url.password == secret[password_ref["key"]]
    # The same PostgreSQL as docker compose's.
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert container["image"] == compose["services"]["postgres"]["image"]


def test_model_services_export_metrics_where_prometheus_is_told_to_scrape(base):
    for name, ports in MODEL_SERVICES.items():
        workload = find(base, "StatefulSet", name)
        annotations = workload["spec"]["template"]["metadata"]["annotations"]
        [container] = containers(workload)
        container_ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert annotations["prometheus.io/scrape"] == "true"
        assert int(annotations["prometheus.io/port"]) == container_ports["metrics"] == ports["metrics"]
        assert int(env(container)["SDG_METRICS_PORT"]["value"]) == ports["metrics"]
    gateway = find(base, "Deployment", "sdg-gateway")
    annotations = gateway["spec"]["template"]["metadata"]["annotations"]
    [container] = containers(gateway)
    assert annotations["prometheus.io/path"] == "/metrics"
    assert int(annotations["prometheus.io/port"]) == int(env(container)["UVICORN_PORT"]["value"])


def sdg_names_set(manifests: list[dict]) -> set[str]:
    return {n for w in workloads(manifests) for c in containers(w) for n in env(c) if n.startswith("SDG_")}


def test_every_env_var_the_manifests_set_is_one_sdg_reads(base, postgres):
    unread = (sdg_names_set(base) | sdg_names_set(postgres)) - KNOWN - COMING
    assert not unread, f"set but read by no SDG component: {sorted(unread)}"
    assert not COMING & KNOWN, f"now in sdg.env.KNOWN, take them out of COMING: {sorted(COMING & KNOWN)}"


def test_every_env_var_compose_sets_is_one_sdg_reads():
    services = compose_config("docker-compose.yml", "docker-compose.scale.yml")["services"]
    names = {n for s in services.values() for n in s.get("environment", {}) if n.startswith("SDG_")}
    assert "SDG_DATABASE_URL" in names
    assert not names - KNOWN - COMING, f"set but read by no SDG component: {sorted(names - KNOWN - COMING)}"
