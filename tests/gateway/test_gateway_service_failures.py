"""How jobs end when a service misbehaves in ways the real services do not (a stream without its
summary, a stream that goes silent, a rejection), when one is not there at all, and when jobs are
cancelled or the gateway stops. The gateway runs in-process; the text service is a scripted gRPC
server whose GenerateRows does what each test asks."""

from __future__ import annotations

import json
import shutil
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from fastapi.testclient import TestClient
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from tests.conftest import free_port
from tests.scrape import Scrape
from gateway.app import create_app
from gateway.jobs import JobStore
from gateway.settings import GatewaySettings
from sdg.v1 import common_pb2, text_pb2, text_pb2_grpc

ROW = {"name": "Ada", "age": 36}


class ScriptedTextService(text_pb2_grpc.TextServiceServicer):
    def __init__(self) -> None:
        self.behaviour = "complete"
        self.cancelled = threading.Event()
        self.loading_answers = 0  # GetModelInfo says "still loading" this many times first

    def GetModelInfo(self, request, context):
        if self.loading_answers > 0:
            self.loading_answers -= 1
            return common_pb2.ModelInfo(model_id="scripted", loaded=False)
        return common_pb2.ModelInfo(model_id="scripted", display_name="scripted (test double)", loaded=True, demo_model=True)

    def GenerateRows(self, request, context):
        context.add_callback(self.cancelled.set)
        if self.behaviour == "reject":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "schema.age: not today")
        if self.behaviour == "busy":  # earlier calls hold the model for 2 s, as the real services say
            for waited in range(5):
                yield text_pb2.GenerateRowsResponse(waiting=common_pb2.Waiting(waited_s=waited * 0.5))
                time.sleep(0.5)
        yield text_pb2.GenerateRowsResponse(progress=text_pb2.RowProgress(rows_done=0, rows_total=request.num_rows))
        yield text_pb2.GenerateRowsResponse(rows=text_pb2.RowBatch(rows_json=[json.dumps(ROW)]))
        if self.behaviour == "silent":
            while context.is_active():
                time.sleep(0.05)
            return
        if self.behaviour == "no_summary":
            return
        if self.behaviour == "unavailable":  # as a replica that dies mid-stream ends it
            context.abort(grpc.StatusCode.UNAVAILABLE, "Socket closed")
        if self.behaviour == "engine_failed":  # as the real service ends a call its engine broke
            error = "RuntimeError: out of memory"
            summary = text_pb2.GenerationSummary(rows_generated=1, rows_requested=request.num_rows, partial=True, reason=f"text engine failed: {error}", error=error)
            yield text_pb2.GenerateRowsResponse(summary=summary)
            return
        yield text_pb2.GenerateRowsResponse(summary=text_pb2.GenerationSummary(rows_generated=1, rows_requested=request.num_rows, seed=request.seed))


def serve_scripted(address: str = "127.0.0.1:0") -> tuple[ScriptedTextService, grpc.Server]:
    servicer = ScriptedTextService()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    text_pb2_grpc.add_TextServiceServicer_to_server(servicer, server)
    health_servicer = health.HealthServicer()
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = server.add_insecure_port(address)
    server.start()
    servicer.address = f"127.0.0.1:{port}"
    return servicer, server


@pytest.fixture(scope="module")
def scripted():
    servicer, server = serve_scripted()
    yield servicer
    server.stop(0)


def settings(tmp_path, text_addr: str, **overrides) -> GatewaySettings:
    return GatewaySettings(
        SDG_TEXT_SERVICE_ADDRS=text_addr,
        SDG_IMAGE_SERVICE_ADDRS=f"127.0.0.1:{free_port()}",  # nothing listens there
        SDG_OUTPUT_DIR=str(tmp_path / "out"),
        SDG_STREAM_TIMEOUT_S=overrides.pop("timeout", 30),
        # The image service never comes: jobs needing it fail after a second, not the default minute.
        SDG_SERVICE_START_WAIT_S=overrides.pop("start_wait", 1),
        # These tests read what a restart leaves before any automatic resume; one turns it on.
        SDG_RESUME_INTERRUPTED=overrides.pop("SDG_RESUME_INTERRUPTED", "false"),
        **overrides,
    )


def stored(app_settings: GatewaySettings, job_id: str) -> dict:
    """The job's record in the job database, as the next gateway finds it."""
    store = JobStore.open(app_settings.database_url, app_settings.output_dir, leases=app_settings.leases)
    try:
        return store.get(job_id).model_dump(mode="json")
    finally:
        store.close()


def wait(client: TestClient, job_id: str, states=("completed", "failed", "cancelled"), timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/status/{job_id}").json()
        if body["status"] in states:
            return body
        time.sleep(0.05)
    raise TimeoutError(body)


def watch(client: TestClient, job_id: str, timeout: float = 20) -> tuple[dict, set[str]]:
    """Polls the job until it has finished: its last status, and every message it showed on the way."""
    messages, deadline = set(), time.monotonic() + timeout
    while (status := client.get(f"/status/{job_id}").json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, status
        messages.add(status["message"])
        time.sleep(0.05)
    return status, messages


def wait_for_first_row(client: TestClient, job_id: str, timeout: float = 20) -> None:
    """Until the job has written a row: its folder exists, so stopping it now leaves partial output."""
    deadline = time.monotonic() + timeout
    while client.get(f"/status/{job_id}").json()["stats"]["rows_done"] < 1:
        assert time.monotonic() < deadline, client.get(f"/status/{job_id}").json()
        time.sleep(0.05)


def submit(client: TestClient, fmt: str = "json") -> str:
    response = client.post("/generate/text", json={"schema": {"name": "string", "age": "int"}, "num_samples": 3, "output_format": fmt})
    assert response.status_code == 202, response.text
    return response.json()["job_id"]


def test_an_engine_that_fails_part_way_fails_the_job_not_completes_it_short(tmp_path, scripted):
    scripted.behaviour = "engine_failed"
    with TestClient(create_app(settings(tmp_path, scripted.address))) as client:
        job = wait(client, submit(client))
        assert (job["status"], job["partial"], job["stats"]["rows_done"]) == ("failed", True, 1)
        assert job["error"] == f"text service at {scripted.address} failed part-way: RuntimeError: out of memory"
        assert client.get(f"/jobs/{job['job_id']}/files/data.json").json() == [ROW]
        # What it wrote stands, and the job can be resumed.
        scripted.behaviour = "complete"
        assert client.post(f"/jobs/{job['job_id']}/resume").status_code == 202


def test_a_stream_without_summary_fails_the_job_and_keeps_loadable_partial_output(tmp_path, scripted):
    scripted.behaviour = "no_summary"
    with TestClient(create_app(settings(tmp_path, scripted.address))) as client:
        job = wait(client, submit(client, "parquet"))
        assert job["status"] == "failed" and job["partial"] is True
        assert "ended its stream without a summary" in job["error"] and scripted.address in job["error"]
        assert "data.parquet" in job["files"] and "manifest.json" in job["files"]
        manifest = client.get(f"/jobs/{job['job_id']}/files/manifest.json").json()
        assert manifest["partial"] is True and manifest["counts"]["generated"] == 1
        assert manifest["model"]["text"]["display_name"] == "scripted (test double)" and manifest["demo_model"] is True
    import pyarrow.parquet as pq

    folder = tmp_path / "out" / job["output_path"].rstrip("/").rsplit("/", 1)[-1]
    assert pq.read_table(folder / "data.parquet").to_pylist() == [ROW]


def test_a_silent_stream_times_out(tmp_path, scripted):
    scripted.behaviour = "silent"
    scripted.cancelled.clear()
    with TestClient(create_app(settings(tmp_path, scripted.address, timeout=1))) as client:
        started = time.monotonic()
        job = wait(client, submit(client))
        assert time.monotonic() - started < 10
        assert job["status"] == "failed" and "sent nothing for 1s" in job["error"]
        # The gateway hung up, so the service stops working for nobody.
        assert scripted.cancelled.wait(5)
        # /metrics counts the stream it gave up on as the gRPC error it reports.
        scrape = Scrape(client.get("/metrics").text)
        assert scrape.value("sdg_grpc_errors_total", kind="text", code="DEADLINE_EXCEEDED") == 1


def test_a_call_waiting_for_a_busy_service_outlasts_the_timeout_and_says_so(tmp_path, scripted):
    scripted.behaviour = "busy"
    with TestClient(create_app(settings(tmp_path, scripted.address, timeout=1))) as client:
        status, messages = watch(client, submit(client))
        assert status["status"] == "completed", status
        assert any(m.startswith("waiting for the text service, busy with other jobs (") for m in messages), messages


def test_a_rejection_is_reported_with_the_services_reason(tmp_path, scripted):
    scripted.behaviour = "reject"
    with TestClient(create_app(settings(tmp_path, scripted.address))) as client:
        job = wait(client, submit(client))
        assert job["status"] == "failed"
        assert job["error"] == f"text service at {scripted.address} rejected the request: schema.age: not today"


def test_a_service_that_is_not_there_fails_the_job_once_the_start_wait_is_over(tmp_path):
    dead = f"127.0.0.1:{free_port()}"
    with TestClient(create_app(settings(tmp_path, dead))) as client:
        started = time.monotonic()
        job = wait(client, submit(client))
        assert time.monotonic() - started < 5
        assert job["status"] == "failed" and job["error"].startswith(f"text service unavailable at {dead}")
        assert job["output_path"] is None and job["files"] == [] and job["partial"] is False
        images = client.post("/generate/images", json={"prompts": ["a"], "num_images": 1, "resolution": [64, 64]}).json()
        assert wait(client, images["job_id"])["error"].startswith("image service unavailable at 127.0.0.1:")


def test_a_job_waits_for_a_service_that_starts_after_the_gateway(tmp_path):
    """As at a restart of the whole stack: the gateway is up first, the service a few seconds later."""
    address = f"127.0.0.1:{free_port()}"
    with TestClient(create_app(settings(tmp_path, address, start_wait=60))) as client:
        job_id = submit(client)
        time.sleep(2.5)
        status = client.get(f"/status/{job_id}").json()
        assert status["status"] == "running" and status["message"].startswith(f"waiting for the text service at {address} to start")
        _, server = serve_scripted(address)
        try:
            assert wait(client, job_id)["status"] == "completed"
        finally:
            server.stop(0)


def test_a_job_waits_for_a_service_loading_its_model(tmp_path, scripted):
    scripted.behaviour, scripted.loading_answers = "complete", 3
    with TestClient(create_app(settings(tmp_path, scripted.address))) as client:
        status, messages = watch(client, submit(client))
        assert status["status"] == "completed", status
        assert f"waiting for the text service at {scripted.address} to load its model (2 s so far)" in messages
        manifest = client.get(f"/jobs/{status['job_id']}/files/manifest.json").json()
        assert manifest["model"]["text"]["loaded"] is True  # the model it ran with, not the loading answer
    with TestClient(create_app(settings(tmp_path, scripted.address, SDG_MODEL_LOAD_WAIT_S=0.5))) as client:
        scripted.loading_answers = 100
        job = wait(client, submit(client))
        assert job["status"] == "failed" and "was still loading its model after" in job["error"]
    scripted.loading_answers = 0


def test_cancel_stops_the_grpc_call_and_marks_output_partial(tmp_path, scripted):
    scripted.behaviour = "silent"
    scripted.cancelled.clear()
    with TestClient(create_app(settings(tmp_path, scripted.address))) as client:
        job_id = submit(client)
        wait_for_first_row(client, job_id)
        response = client.post(f"/jobs/{job_id}/cancel")
        assert response.status_code == 202
        body = response.json()
        assert body["status"] == "cancelled" and body["partial"] is True
        assert scripted.cancelled.wait(5)
        assert json.loads(client.get(f"/jobs/{job_id}/files/data.json").text) == [ROW]
        # Cancelling again is a conflict; an unknown job is not found.
        assert client.post(f"/jobs/{job_id}/cancel").status_code == 409
        assert client.post("/jobs/job_000000000000/cancel").status_code == 404


def test_jobs_beyond_the_limit_wait_queued_and_can_be_cancelled_there(tmp_path, scripted):
    scripted.behaviour = "silent"
    with TestClient(create_app(settings(tmp_path, scripted.address, SDG_MAX_CONCURRENT_JOBS=1))) as client:
        first, second = submit(client), submit(client)
        wait(client, first, states=("running",))
        time.sleep(0.3)
        assert client.get(f"/status/{second}").json()["status"] == "queued"
        assert client.get("/health").json()["jobs_in_progress"] == 2
        cancelled = client.post(f"/jobs/{second}/cancel").json()
        assert cancelled["status"] == "cancelled" and cancelled["output_path"] is None
        client.post(f"/jobs/{first}/cancel")


def test_shutdown_records_running_jobs_as_interrupted(tmp_path, scripted):
    scripted.behaviour = "silent"
    app_settings = settings(tmp_path, scripted.address)
    with TestClient(create_app(app_settings)) as client:
        job_id = submit(client)
        wait_for_first_row(client, job_id)
    record = stored(app_settings, job_id)
    assert record["status"] == "failed" and record["error"] == "interrupted: gateway shut down" and record["partial"] is True
    # A new gateway on the same output folder still knows the job.
    with TestClient(create_app(app_settings)) as client:
        assert client.get(f"/status/{job_id}").json()["error"] == "interrupted: gateway shut down"


def test_queued_jobs_wait_out_a_restart_and_then_run(tmp_path, scripted):
    """A job still queued when the gateway stops has done nothing yet: it stays queued on disk,
    and the next gateway on the same output folder runs it. The running one was interrupted."""
    scripted.behaviour = "silent"
    app_settings = settings(tmp_path, scripted.address, SDG_MAX_CONCURRENT_JOBS=1)
    with TestClient(create_app(app_settings)) as client:
        running, waiting = submit(client), submit(client)
        wait_for_first_row(client, running)
        assert client.get(f"/status/{waiting}").json()["status"] == "queued"
    record = stored(app_settings, waiting)
    assert record["status"] == "queued" and record["finished_at"] is None
    scripted.behaviour = "complete"
    with TestClient(create_app(app_settings)) as client:
        assert client.get(f"/status/{running}").json()["error"] == "interrupted: gateway shut down"
        job = wait(client, waiting)
        assert job["status"] == "completed" and "data.json" in job["files"]  # the script sends 1 row of 3
        assert json.loads(client.get(f"/jobs/{waiting}/files/data.json").text) == [ROW]


def test_a_job_stopped_while_it_waited_for_a_service_runs_again_after_a_restart(tmp_path, scripted):
    """A job the gateway stops while it waits for a service has made nothing: rather than fail
    with nothing to resume, it is queued again, and the next gateway runs it."""
    absent = f"127.0.0.1:{free_port()}"
    app_settings = settings(tmp_path, absent, start_wait=60)
    with TestClient(create_app(app_settings)) as client:
        job_id = submit(client)
        wait(client, job_id, states=("running",))
        time.sleep(0.5)
        assert client.get(f"/status/{job_id}").json()["message"].startswith("waiting for the text service")
    record = stored(app_settings, job_id)
    assert (record["status"], record["started_at"], record["partial"], record["error"]) == ("queued", None, False, None)
    assert record["message"].startswith("queued again")
    scripted.behaviour = "complete"
    with TestClient(create_app(app_settings.model_copy(update={"text_service_addrs": [scripted.address]}))) as client:
        assert wait(client, job_id)["status"] == "completed"


def cancelled_with_a_row(app_settings: GatewaySettings, scripted) -> tuple[str, dict]:
    """A text job cancelled after its first row (of 3): one to resume. Returns its id and status."""
    scripted.behaviour = "silent"
    with TestClient(create_app(app_settings)) as client:
        job_id = submit(client)
        wait_for_first_row(client, job_id)
        client.post(f"/jobs/{job_id}/cancel")
        kept = wait(client, job_id)
    assert kept["status"] == "cancelled" and kept["stats"]["rows_done"] == 1
    return job_id, kept


def test_a_resume_whose_service_never_comes_still_shows_what_the_folder_keeps(tmp_path, scripted):
    """A stopped job resumed while its service is down fails before it opens its folder. Its
    status and manifest then say what the folder still holds, not "no files, 0%"."""
    app_settings = settings(tmp_path, scripted.address)
    job_id, kept = cancelled_with_a_row(app_settings, scripted)
    absent = app_settings.model_copy(update={"text_service_addrs": [f"127.0.0.1:{free_port()}"]})
    with TestClient(create_app(absent)) as client:
        assert client.post(f"/jobs/{job_id}/resume").status_code == 202
        job = wait(client, job_id)
    assert job["status"] == "failed" and job["partial"] is True
    assert job["files"] == kept["files"] and job["progress"] == 33  # 1 row of 3
    assert job["message"].endswith("its folder keeps 1 row of 3, as before")
    folder = Path(job["output_path"]) if Path(job["output_path"]).is_absolute() else app_settings.output_dir / job["output_path"]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert (manifest["status"], manifest["partial"], manifest["counts"]["generated"]) == ("failed", True, 1)
    assert "did not start" in manifest["reason"] or "text service" in manifest["reason"]


def test_a_resume_stopped_while_it_waited_for_its_service_is_queued_again_as_a_resume(tmp_path, scripted):
    """As a fresh job that made nothing: a resume the gateway stops before it opened its folder is
    queued again, its resume and its kept rows as they were, and the next gateway runs it."""
    app_settings = settings(tmp_path, scripted.address)
    job_id, _ = cancelled_with_a_row(app_settings, scripted)
    absent = app_settings.model_copy(update={"text_service_addrs": [f"127.0.0.1:{free_port()}"], "service_start_wait_s": 60})
    with TestClient(create_app(absent)) as client:
        assert client.post(f"/jobs/{job_id}/resume").status_code == 202
        wait(client, job_id, states=("running",))
    record = stored(app_settings, job_id)
    assert (record["status"], record["error"], len(record["resumes"]), record["resumes"][0]["rows_kept"]) == ("queued", None, 1, 1)
    scripted.behaviour = "complete"
    with TestClient(create_app(app_settings)) as client:
        job = wait(client, job_id)
    assert job["status"] == "completed" and len(job["resumes"]) == 1


def test_a_dead_gateways_running_job_keeps_its_rows_after_restart(tmp_path, scripted):
    """The disk as a SIGKILL leaves it, taken while a Parquet job runs: its record says running,
    its data.parquet has no footer. The next gateway records the job as interrupted and partial,
    and makes its folder loadable with the rows it had (the manifest was started at open)."""
    scripted.behaviour = "silent"
    app_settings = settings(tmp_path, scripted.address)
    out = tmp_path / "out"
    with TestClient(create_app(app_settings)) as client:
        job_id = submit(client, "parquet")
        wait_for_first_row(client, job_id)
        shutil.copytree(out, tmp_path / "at-the-kill")
    shutil.rmtree(out)
    shutil.copytree(tmp_path / "at-the-kill", out)
    record = stored(app_settings, job_id)
    assert record["status"] == "running"
    with TestClient(create_app(app_settings)) as client:
        job = client.get(f"/status/{job_id}").json()
        assert (job["status"], job["partial"], job["error"]) == ("failed", True, "interrupted: gateway restarted")
        assert job["files"] == ["data.parquet", "manifest.json", "quality.json", "schema.json"]
        assert job["stats"]["rows_done"] == 1 and client.get(f"/jobs/{job_id}/quality").json()["rows"] == 1
        manifest = client.get(f"/jobs/{job_id}/files/manifest.json").json()
        assert (manifest["status"], manifest["partial"], manifest["counts"]["generated"]) == ("failed", True, 1)
        assert manifest["model"]["text"]["display_name"] == "scripted (test double)"
    folder = Path(job["output_path"]) if Path(job["output_path"]).is_absolute() else out / Path(job["output_path"]).name
    import pyarrow.parquet as pq

    assert pq.read_table(folder / "data.parquet").to_pylist() == [ROW]


def test_a_queued_job_that_todays_settings_refuse_fails_at_restart(tmp_path, scripted):
    app_settings = settings(tmp_path, scripted.address)
    store = JobStore.open(app_settings.database_url, app_settings.output_dir, leases=app_settings.leases)
    store.load()
    body = {"prompts": ["a dog"], "num_images": 1, "resolution": [2048, 2048]}  # over the 1024 limit
    job = store.create("images", body, "Image generation job queued")
    with TestClient(create_app(app_settings)) as client:
        status = client.get(f"/status/{job.job_id}").json()
    assert status["status"] == "failed" and not status["partial"]
    assert status["error"].startswith("could not be queued again after a restart: ") and "2048" in status["error"]


@pytest.mark.parametrize(
    ("manifest", "error"),
    [
        # Queued again as a resume; then the image service is down (nothing listens there).
        ('{"seed": 7, "status": "cancelled"}', "image service"),
        # Its images' seed is unknown: refused, where a fresh job's plan would have drawn a new one.
        ("{not json", "could not be queued again after a restart: job job_"),
    ],
)
def test_a_resumed_job_queued_at_a_restart_is_queued_as_a_resume(tmp_path, scripted, manifest, error):
    """A resumed job still queued when the gateway stopped is queued again as a resume: its own
    folder and its recorded seed. However it ends, it stays partial, its kept image untouched; a
    readable manifest then records the failure, an unreadable one is left as it is."""
    app_settings = settings(tmp_path, scripted.address)
    from gateway.models import Resume
    from gateway.outputs import ImageDatasetWriter
    from gateway.results import GeneratedImage

    folder = tmp_path / "out" / "images_20260101_000000"
    folder.mkdir(parents=True)
    with ImageDatasetWriter(folder) as writer:
        writer.add(GeneratedImage(0, "a dog", 7, b"\x89PNG not really", 64, 64, objects=[]))
    (folder / "manifest.json").write_text(manifest)
    store = JobStore.open(app_settings.database_url, app_settings.output_dir, leases=app_settings.leases)
    store.load()
    job = store.create("images", {"prompts": ["a dog"], "num_images": 3, "resolution": [64, 64]}, "queued to resume")
    job.output_dir, job.output_path = str(folder), folder.name
    job.resumes.append(Resume(at="2026-01-01T00:01:00Z", images_kept=1))
    store.save(job)
    with TestClient(create_app(app_settings)) as client:
        status = wait(client, job.job_id)
    assert (status["status"], status["partial"], status["output_path"]) == ("failed", True, folder.name)
    assert error in status["error"], status["error"]
    assert status["resumes"] == [
        {"at": "2026-01-01T00:01:00Z", "images_kept": 1, "rows_kept": None, "rows_seed": None, "automatic": False, "failover_from": None, "failover_reason": None}
    ]
    assert (folder / "images" / "image_00000.png").exists()
    if manifest.startswith("{not"):
        assert (folder / "manifest.json").read_text() == manifest
    else:
        recorded = json.loads((folder / "manifest.json").read_text())
        assert (recorded["seed"], recorded["status"], recorded["partial"]) == (7, "failed", True) and error in recorded["reason"]


@pytest.mark.parametrize("progress", [False, True])
def test_a_job_the_gateway_resumed_twice_for_nothing_is_not_resumed_again(tmp_path, scripted, progress):
    """With SDG_RESUME_INTERRUPTED, a job cut off again after each of the gateway's last two resumes
    of it, with nothing more done, is likely what brings the gateway down: it stays failed. One
    that got further is resumed (and then fails here: no image service listens)."""
    app_settings = settings(tmp_path, scripted.address, SDG_RESUME_INTERRUPTED="true")
    from gateway.models import Resume
    from gateway.outputs import ImageDatasetWriter
    from gateway.results import GeneratedImage

    folder = tmp_path / "out" / "images_20260101_000000"
    folder.mkdir(parents=True)
    with ImageDatasetWriter(folder) as writer:
        for index in range(2 if progress else 1):
            writer.add(GeneratedImage(index, "a dog", 7 + index, b"\x89PNG not really", 64, 64, objects=[]))
    (folder / "manifest.json").write_text('{"seed": 7}')
    store = JobStore.open(app_settings.database_url, app_settings.output_dir, leases=app_settings.leases)
    store.load()
    job = store.create("images", {"prompts": ["a dog"], "num_images": 3, "resolution": [64, 64]}, "")
    job.status, job.output_dir, job.output_path = "running", str(folder), folder.name  # as a crash leaves it
    job.resumes = [Resume(at=f"2026-01-01T00:0{i}:00Z", images_kept=1, automatic=True) for i in (1, 2)]
    store.save(job)
    with TestClient(create_app(app_settings)) as client:
        status = wait(client, job.job_id)
    assert (status["status"], status["partial"]) == ("failed", True)
    if progress:
        assert len(status["resumes"]) == 3 and status["resumes"][-1]["automatic"] and "image service" in status["error"]
    else:
        assert len(status["resumes"]) == 2 and status["error"] == "interrupted: gateway restarted"


def test_deleting_a_job_never_deletes_a_folder_outside_the_output_root(tmp_path, scripted):
    app_settings = settings(tmp_path, scripted.address)

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "data.json").write_text("[]")
    store = JobStore.open(app_settings.database_url, app_settings.output_dir, leases=app_settings.leases)
    store.load()
    job = store.create("text", {"schema": {"a": "int"}, "num_samples": 1}, "")
    job.status, job.finished_at, job.output_dir, job.output_path = "completed", "2026-01-01T00:00:00Z", str(outside), "elsewhere/"
    store.save(job)
    with TestClient(create_app(app_settings)) as client:
        response = client.delete(f"/jobs/{job.job_id}")
        assert response.status_code == 200 and response.json()["files_deleted"] is False
        assert client.get(f"/status/{job.job_id}").status_code == 404
    assert (outside / "data.json").exists()


def test_files_outside_the_job_folder_are_not_served(tmp_path, scripted):
    scripted.behaviour = "complete"
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "secret.txt").write_text("no")
    with TestClient(create_app(settings(tmp_path, scripted.address))) as client:
        job = wait(client, submit(client))
        assert job["status"] == "completed"
        base = f"/jobs/{job['job_id']}/files"
        assert client.get(f"{base}/data.json").status_code == 200
        for path in ("../secret.txt", "..%2Fsecret.txt", "%2e%2e/secret.txt", "/etc/passwd", "nope.json"):
            response = client.get(f"{base}/{path}")
            assert response.status_code == 404, path
        assert client.get("/jobs/job_000000000000/files/data.json").status_code == 404


def test_health_is_degraded_when_a_service_is_down(tmp_path, scripted):
    with TestClient(create_app(settings(tmp_path, scripted.address))) as client:
        response = client.get("/health")
        assert response.status_code == 500
        body = response.json()
        assert body["status"] == "degraded"
        assert body["text_model"] == "scripted (test double) (loaded)"
        assert body["image_model"].startswith("unavailable at 127.0.0.1:")
        assert body["services"][scripted.address]["status"] == "serving"
        assert body["demo_models"] is True
