"""The web UI in headless Chromium, against the real gateway and the real (tiny-model) services:
what a user sees and clicks, end to end. Debian's Chromium is used because Playwright cannot
download its own browser offline (`make browser` installs it)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import cancelled_part_way, start_gateway, wait_for_job

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
expect = sync_api.expect

pytestmark = pytest.mark.ui

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Jobs on the tiny models take seconds; the margin is for a loaded CI machine.
JOB_TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (Debian: apt-get install chromium, or `make browser`)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, gateway):
    """A fresh page on {gateway}/ui. Fails the test on any uncaught script error or console error
    (a 404 for a script or stylesheet shows up as one)."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    page.goto(f"{gateway.address}/ui")
    expect(page.get_by_test_id("health-status")).not_to_have_text("checking…")
    yield page
    context.close()
    # A 4xx answer that a test provoked on purpose is logged by Chromium as a failed resource.
    unexpected = [p for p in problems if "the server responded with a status of 4" not in p]
    assert not unexpected, "\n".join(unexpected)


def submit(page, kind: str) -> str:
    """Clicks the form's submit button; returns the id of the job the gateway queued. Read from the
    reply, not from the form's "Queued …" note, which goes as soon as the job has finished."""
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith(f"/generate/{kind}")) as reply:
        page.get_by_test_id(f"submit-{kind}").click()
    assert reply.value.status == 202, reply.value.text()
    return reply.value.json()["job_id"]


def job_item(page, job_id: str):
    return page.locator(f'[data-testid="job-item"][data-job-id="{job_id}"]')


def fill_field(page, row, name: str, type_: str) -> None:
    row.get_by_test_id("field-name").fill(name)
    row.get_by_test_id("field-type").select_option(type_)


def test_header_shows_health_and_the_demo_model_banner(page):
    banner = page.get_by_test_id("demo-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Demo models with random weights: output is schema-shaped nonsense")
    expect(page.get_by_test_id("health-status")).to_have_text("healthy")
    for kind in ("text", "image"):
        label = page.get_by_test_id(f"health-{kind}-model")
        expect(label).to_contain_text("demo model, random weights")
        # Shown whole, not cut off with an ellipsis.
        assert label.evaluate("e => e.scrollWidth <= e.clientWidth"), label.inner_text()
    expect(page.get_by_test_id("health-problem")).to_be_hidden()


def test_text_job_from_the_visual_builder_completes_with_a_rows_preview(page, gateway, tmp_path):
    form = page.get_by_test_id("form-text")
    # Start from an empty builder: remove the example fields.
    while form.get_by_test_id("field-remove").count():
        form.get_by_test_id("field-remove").first.click()

    add = page.get_by_test_id("text-add-field")
    for name, type_ in [("city", "string"), ("age", "int"), ("member", "bool"), ("tier", "enum"), ("joined", "date")]:
        add.click()
        fill_field(page, form.get_by_test_id("schema-field").last, name, type_)
    rows = form.get_by_test_id("schema-field")
    age = rows.nth(1)
    age.get_by_test_id("field-options-toggle").click()
    age.get_by_test_id("field-minimum").fill("18")
    age.get_by_test_id("field-maximum").fill("65")
    rows.nth(3).get_by_test_id("field-enum").fill("bronze, silver, gold")
    rows.nth(4).get_by_test_id("field-nullable").check()

    page.get_by_test_id("text-num-samples").fill("5")
    page.get_by_test_id("text-format").select_option("csv")
    page.get_by_test_id("text-seed").fill("7")
    job_id = submit(page, "text")

    item = job_item(page, job_id)
    expect(item).to_be_visible()
    expect(item.get_by_test_id("job-type")).to_have_text("text")
    expect(item.get_by_test_id("job-status")).to_have_text("completed", timeout=JOB_TIMEOUT_MS)

    view = page.get_by_test_id("job-view")
    expect(view.get_by_test_id("job-view-status")).to_have_text("completed")
    table = view.get_by_test_id("preview-table")
    expect(table).to_be_visible()
    expect(table.locator("thead th")).to_have_text(["#", "city", "age", "member", "tier", "joined"])
    expect(table.get_by_test_id("preview-row")).to_have_count(5)
    for tier in table.locator("tbody tr td:nth-child(5)").all_inner_texts():
        assert tier in {"bronze", "silver", "gold"}
    for age_text in table.locator("tbody tr td:nth-child(3)").all_inner_texts():
        assert 18 <= int(age_text) <= 65
    model = view.get_by_test_id("result-model-label")
    expect(model).to_contain_text("demo model, random weights")
    expect(view.get_by_test_id("result-demo")).to_be_visible()
    assert model.inner_text().count("demo model") == 1, model.inner_text()  # said once, not twice
    expect(view.get_by_test_id("result-files")).to_contain_text("data.csv")

    # The schema the gateway received is exactly what the rows describe.
    schema = httpx.get(f"{gateway.address}/status/{job_id}").json()["request"]["schema"]
    assert schema["required"] == ["city", "age", "member", "tier", "joined"]
    assert schema["properties"]["age"] == {"type": "integer", "minimum": 18, "maximum": 65}
    assert schema["properties"]["tier"] == {"type": "string", "enum": ["bronze", "silver", "gold"]}
    assert schema["properties"]["joined"] == {"type": ["string", "null"], "format": "date"}
    page.screenshot(path=str(tmp_path / "text-job.png"), full_page=True)


def test_image_job_shows_step_progress_and_annotated_thumbnails(page, tmp_path):
    page.get_by_test_id("tab-images").click()
    long_prompt = "a blue ball on the grass " * 17  # 102 words: CLIP reads 77 tokens
    page.get_by_test_id("images-prompts").fill(f"a red cube on a wooden table\n{long_prompt}")
    page.get_by_test_id("images-num").fill("2")
    page.get_by_test_id("images-width").fill("64")
    page.get_by_test_id("images-height").fill("64")
    page.get_by_test_id("images-steps").fill("2")
    page.get_by_test_id("images-seed").fill("3")
    page.get_by_test_id("images-ann-caption").check()
    page.get_by_test_id("images-reuse").select_option("2")
    job_id = submit(page, "images")

    expect(job_item(page, job_id).get_by_test_id("job-status")).to_have_text("completed", timeout=JOB_TIMEOUT_MS)
    view = page.get_by_test_id("job-view")
    # Steps are counted per batch and the finished job keeps its last count: the steps asked for
    # (the default scheduler, PNDM, runs one more UNet pass, counted as the pipeline counts it).
    stats = view.get_by_test_id("job-view-stats")
    expect(stats).to_contain_text("images 2/2")
    step, total = map(int, re.search(r"step (\d+)/(\d+)", stats.inner_text()).groups())
    assert step == total == 2
    thumbs = view.get_by_test_id("thumbnail")
    expect(thumbs).to_have_count(2)
    # The long prompt was cut at CLIP's 77 tokens: its image, and the job's note, say so.
    expect(thumbs.nth(0).get_by_test_id("thumb-prompt-cut")).to_have_count(0)
    expect(thumbs.nth(1).get_by_test_id("thumb-prompt-cut")).to_have_text("prompt cut: its last 27 tokens unread")
    expect(view.get_by_test_id("result-images-note")).to_contain_text("the prompts of 1 image were longer than the text encoder reads")
    for i in range(2):
        img = thumbs.nth(i).locator("img")
        expect(img).to_be_visible()
        assert img.evaluate("img => img.decode().then(() => img.naturalWidth)") == 64
    # Boxes (bbox is on by default) are drawn on a canvas over each annotated image.
    expect(view.get_by_test_id("result-files")).to_contain_text("annotations/annotations.json")
    overlay = view.get_by_test_id("annotation-overlay").first
    expect(overlay).to_be_visible()
    assert int(overlay.get_attribute("data-objects")) >= 1
    expect(view.get_by_test_id("result-model-label")).to_contain_text("demo model")
    # Feature reuse was asked for: the result says its images are approximate.
    expect(view.get_by_test_id("result-images-note")).to_contain_text("approximate: the whole UNet ran every 2 steps")
    # The whole output in one download.
    archive = view.get_by_test_id("result-archive")
    href = archive.evaluate("a => a.href")  # absolute
    assert href.endswith(f"/jobs/{job_id}/archive")
    response = page.request.get(href)
    assert response.ok and response.headers["content-type"] == "application/zip" and response.body()[:2] == b"PK"
    page.screenshot(path=str(tmp_path / "image-job.png"), full_page=True)


def test_running_image_job_reports_steps_and_can_be_cancelled(page):
    page.get_by_test_id("tab-images").click()
    page.get_by_test_id("images-prompts").fill("a long job to watch and cancel")
    # Enough work to still be running when the page polls; it is cancelled as soon as it is seen.
    page.get_by_test_id("images-num").fill("256")
    page.get_by_test_id("images-width").fill("64")
    page.get_by_test_id("images-height").fill("64")
    page.get_by_test_id("images-steps").fill("40")
    page.get_by_test_id("images-ann-bbox").uncheck()
    job_id = submit(page, "images")

    item = job_item(page, job_id)
    expect(item.get_by_test_id("job-message")).to_have_text(re.compile(r"batch \d+/\d+, step \d+/40\b"), timeout=JOB_TIMEOUT_MS)
    expect(item.get_by_test_id("job-status")).to_have_text("running")
    # Its view shows the images finished so far while it runs.
    item.locator(".job-id").click()
    latest = page.get_by_test_id("job-view").get_by_test_id("result-latest")
    expect(latest).to_contain_text("done so far", timeout=JOB_TIMEOUT_MS)
    expect(item.get_by_test_id("job-status")).to_have_text("running")
    first = latest.get_by_test_id("thumbnail").first.locator("img")
    expect(first).to_have_attribute("src", re.compile(rf"/jobs/{job_id}/files/images/image_\d{{5}}\.png$"))
    first.evaluate("img => img.decode()")  # a PNG that loads
    item.get_by_test_id("job-cancel").click()
    expect(item.get_by_test_id("job-status")).to_have_text("cancelled", timeout=60_000)
    expect(item.get_by_test_id("job-cancel")).to_be_hidden()


def resume_from_its_view(page, gateway, kind: str, body: dict, stat: str):
    """Submits a job, cancels it over the API once its status counts one of `stat`, and clicks
    Resume in its view: the job's list item and view."""
    with httpx.Client(base_url=gateway.address, timeout=30) as client:
        job_id, _ = cancelled_part_way(client, kind, body, stat)
    item = job_item(page, job_id)
    expect(item.get_by_test_id("job-status")).to_have_text("cancelled", timeout=60_000)
    item.locator(".job-id").click()
    view = page.get_by_test_id("job-view")
    view.get_by_test_id("job-view-resume").click()
    return job_id, item, view


def test_a_cancelled_image_job_resumes_from_its_view(page, gateway):
    # Enough images that the resumed run is still going when the page shows its notice.
    body = {"prompts": ["a lighthouse on a cliff"], "num_images": 16, "resolution": [64, 64], "num_inference_steps": 30}
    job_id, item, view = resume_from_its_view(page, gateway, "images", body, "step")
    expect(page.locator("#jobs-notice")).to_have_text(re.compile(rf"^Resuming {job_id}: \d+ images? of 16 kept$"))
    expect(item.get_by_test_id("job-status")).to_have_text("completed", timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#jobs-notice")).to_have_text("")  # the notice goes once the resumed run has ended
    expect(view.get_by_test_id("job-view-resumes")).to_have_text(re.compile(r"^once \(kept \d+ images?\)$"))
    expect(view.get_by_test_id("job-view-resume")).to_have_count(0)
    expect(view.get_by_test_id("thumbnail")).to_have_count(16)


def test_a_cancelled_text_job_resumes_from_its_view(page, gateway):
    body = {"schema": {"city": "string", "zip": "int"}, "num_samples": 1500, "output_format": "jsonl"}
    job_id, item, view = resume_from_its_view(page, gateway, "text", body, "rows_done")
    expect(page.locator("#jobs-notice")).to_have_text(re.compile(rf"^Resuming {job_id}: \d+ rows? of 1500 kept$"))
    expect(item.get_by_test_id("job-status")).to_have_text("completed", timeout=JOB_TIMEOUT_MS)
    expect(view.get_by_test_id("job-view-resumes")).to_have_text(re.compile(r"^once \(kept \d+ rows?\)$"))
    expect(view.get_by_test_id("job-view-stats")).to_contain_text("rows 1500/1500")
    expect(view.get_by_test_id("job-view-resume")).to_have_count(0)


def test_a_finished_job_is_deleted_from_its_view(page, gateway):
    job_id = httpx.post(f"{gateway.address}/generate/text", json={"schema": {"a": "int"}, "num_samples": 2}).json()["job_id"]
    item = job_item(page, job_id)
    expect(item.get_by_test_id("job-status")).to_have_text("completed", timeout=JOB_TIMEOUT_MS)
    item.locator(".job-id").click()
    view = page.get_by_test_id("job-view")
    dialogs = []
    page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    view.get_by_test_id("job-view-delete").click()
    expect(page.locator("#jobs-notice")).to_have_text(re.compile(rf"^Deleted job {job_id} and its folder .+/\.$"))
    assert dialogs and dialogs[0].startswith(f"Delete job {job_id} and its output folder ")
    expect(item).to_have_count(0)
    expect(view).to_be_hidden()
    assert httpx.get(f"{gateway.address}/status/{job_id}").status_code == 404


def test_unified_job_pairs_rows_with_images(page, tmp_path):
    page.get_by_test_id("tab-unified").click()
    # The default schema has product, color and price; a chip inserts a placeholder at the caret.
    prompts = page.get_by_test_id("unified-prompts")
    prompts.fill("A ")
    prompts.press("End")
    page.get_by_test_id("unified-placeholders").get_by_text("{product}").click()
    expect(prompts).to_have_value("A {product}")
    page.get_by_test_id("unified-num-samples").fill("2")
    page.get_by_test_id("unified-width").fill("64")
    page.get_by_test_id("unified-height").fill("64")
    page.get_by_test_id("form-unified").locator("summary").click()
    page.get_by_test_id("unified-steps").fill("2")
    job_id = submit(page, "unified")

    expect(job_item(page, job_id).get_by_test_id("job-status")).to_have_text("completed", timeout=JOB_TIMEOUT_MS)
    view = page.get_by_test_id("job-view")
    table = view.get_by_test_id("preview-table")
    expect(table.get_by_test_id("preview-row")).to_have_count(2)
    expect(table.locator("thead th")).to_contain_text(["product", "color", "price", "image_file"])
    # The image_file cells link to the paired images.
    expect(table.locator("tbody a")).to_have_count(2)
    expect(view.get_by_test_id("thumbnail")).to_have_count(2)
    expect(view.get_by_test_id("result-model-label")).to_have_count(2)  # text and image model
    page.screenshot(path=str(tmp_path / "unified-job.png"), full_page=True)


def test_any_part_of_a_job_card_opens_that_job(page, gateway):
    body = {"schema": {"city": "string"}, "num_samples": 2}
    ids = [httpx.post(f"{gateway.address}/generate/text", json=body).json()["job_id"] for _ in range(2)]
    view = page.get_by_test_id("job-view")
    for job_id, part in zip(ids, (".job-id", "[data-testid=job-progress]")):
        item = job_item(page, job_id)
        expect(item.get_by_test_id("job-status")).to_have_text("completed", timeout=JOB_TIMEOUT_MS)
        item.locator(part).click()
        expect(view.locator(".job-view-head .job-id")).to_have_text(job_id)
        expect(item.get_by_test_id("job-select")).to_have_attribute("aria-pressed", "true")


def test_page_opened_from_disk_talks_to_the_gateway_named_by_api_once_cors_allows_it(browser, gateway, text_service, image_service, tmp_path):
    # A page from disk has the origin "null"; CORS is same-origin unless SDG_CORS_ORIGINS opens it.
    opened = start_gateway(tmp_path, text_service.address, image_service.address, tmp_path / "data", SDG_CORS_ORIGINS="null")
    index = Path(__file__).resolve().parents[2] / "frontend" / "index.html"
    try:
        for address, health in ((gateway.address, "unreachable"), (opened.address, "healthy")):
            context = browser.new_context()
            page = context.new_page()
            page.goto(f"{index.as_uri()}?api={address}")
            expect(page.get_by_test_id("health-status")).to_have_text(health)
            expect(page.get_by_test_id("demo-banner")).to_be_visible(visible=health == "healthy")
            context.close()
    finally:
        opened.stop()


def test_bad_input_shows_the_gateways_400_detail(page):
    page.get_by_test_id("tab-unified").click()
    page.get_by_test_id("unified-prompts").fill("A {colour} {product} on white")  # the field is "color"
    page.get_by_test_id("submit-unified").click()
    error = page.get_by_test_id("unified-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("400")
    expect(error).to_contain_text("colour")

    page.get_by_test_id("tab-text").click()
    page.get_by_test_id("text-raw-toggle").check()
    page.get_by_test_id("text-raw").fill('{"name": "string", "age": "integr"}')
    page.get_by_test_id("submit-text").click()
    error = page.get_by_test_id("text-error")
    expect(error).to_contain_text("400")
    expect(error).to_contain_text("age")
    expect(error).to_contain_text("integr")


def test_raw_json_and_the_builder_convert_both_ways(page):
    page.get_by_test_id("text-raw-toggle").check()
    raw = page.get_by_test_id("text-raw")
    assert '"format": "email"' in raw.input_value()
    raw.fill('{"sku": {"type": "string", "pattern": "[A-Z]{3}-[0-9]{4}"}, "qty": "int"}')
    page.get_by_test_id("text-raw-toggle").uncheck()
    names = page.get_by_test_id("form-text").get_by_test_id("field-name")
    expect(names).to_have_count(2)
    assert [n.input_value() for n in names.all()] == ["sku", "qty"]
    # Nested objects have no row controls: the page says so and stays in JSON mode.
    page.get_by_test_id("text-raw-toggle").check()
    raw.fill('{"address": {"type": "object", "properties": {"city": "string"}}}')
    page.get_by_test_id("text-raw-toggle").click()  # not uncheck(): the page refuses, on purpose
    expect(page.get_by_test_id("text-schema-message")).to_contain_text("Keep editing it as JSON")
    expect(page.get_by_test_id("text-raw-toggle")).to_be_checked()


def until(condition, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_resume_that_ends_before_the_next_poll_replaces_the_old_results(page, gateway):
    body = {"schema": {"a": "int"}, "num_samples": 2000, "output_format": "jsonl"}
    with httpx.Client(base_url=gateway.address, timeout=30) as client:
        job_id, _ = cancelled_part_way(client, "text", body, "rows_done")
    job_item(page, job_id).locator(".job-id").click()
    view = page.get_by_test_id("job-view")
    manifest = view.get_by_test_id("result-model")
    expect(manifest).to_contain_text("Partial")

    # The page hears back from its resume only once the resumed run has ended, so no poll ever
    # sees the job queued or running: the results must still be those of the new run.
    def resume_and_finish(route):
        reply = httpx.post(route.request.url)
        with httpx.Client(base_url=gateway.address, timeout=30) as client:
            wait_for_job(client, job_id, timeout=120)
        route.fulfill(status=reply.status_code, headers={"content-type": "application/json"}, body=reply.text)

    page.route(f"**/jobs/{job_id}/resume", resume_and_finish)
    view.get_by_test_id("job-view-resume").click()
    expect(view.get_by_test_id("job-view-status")).to_have_text("completed", timeout=JOB_TIMEOUT_MS)
    expect(view.get_by_test_id("job-view-resumes")).to_have_text(re.compile(r"^once \(kept \d+ rows?\)$"))
    expect(manifest).to_contain_text("Counts")
    expect(manifest).not_to_contain_text("Partial")


def test_a_job_cancelled_before_its_first_row_says_so_and_groups_its_actions(page, gateway):
    body = {"schema": {"a": "int"}, "num_samples": 100_000, "output_format": "jsonl"}
    # A job that waits for the text model, busy with another, has opened its data file and written
    # no row: cancelled then, it is cancelled before its first row on any machine.
    with httpx.Client(base_url=gateway.address, timeout=30) as client:
        blocker = client.post("/generate/text", json=body).json()["job_id"]
        until(lambda: client.get(f"/status/{blocker}").json()["stats"]["rows_done"] > 0)
        job_id = client.post("/generate/text", json=body).json()["job_id"]
        until(lambda: client.get(f"/status/{job_id}").json()["message"].startswith("waiting for the text service"))
        client.post(f"/jobs/{job_id}/cancel")
        status = wait_for_job(client, job_id, timeout=60)
        client.post(f"/jobs/{blocker}/cancel")
        wait_for_job(client, blocker, timeout=60)
    assert status["status"] == "cancelled" and status["stats"]["rows_done"] == 0 and "data.jsonl" in status["files"], status
    job_item(page, job_id).locator(".job-id").click()
    view = page.get_by_test_id("job-view")
    expect(view.get_by_test_id("result-rows-empty")).to_have_text("No rows were written to data.jsonl.")
    expect(view.get_by_test_id("preview-table")).to_have_count(0)

    # Resume, Download and Delete sit together at the end of the job's head.
    actions = view.get_by_test_id("job-view-actions")
    expect(actions.locator(".btn")).to_have_text(["Resume", "Download all (.zip)", "Delete"])
    boxes = [button.bounding_box() for button in actions.locator(".btn").all()]
    for left, right in zip(boxes, boxes[1:]):
        assert abs(left["y"] - right["y"]) < 2 and 0 <= right["x"] - (left["x"] + left["width"]) <= 12, boxes
    head = view.locator(".job-view-head").bounding_box()
    assert head["x"] + head["width"] - (boxes[-1]["x"] + boxes[-1]["width"]) < 2, (head, boxes)


def test_the_running_count_follows_the_jobs_list_not_only_the_health_poll(page, gateway):
    running = page.get_by_test_id("health-jobs")
    expect(running).to_have_text("0")
    # From here /health keeps saying no job runs: only the jobs list can show the count move.
    idle = httpx.get(f"{gateway.address}/health").text
    page.route("**/health", lambda route: route.fulfill(status=200, content_type="application/json", body=idle))
    body = {"schema": {"a": "int"}, "num_samples": 100_000, "output_format": "jsonl"}
    job_id = httpx.post(f"{gateway.address}/generate/text", json=body).json()["job_id"]
    # An idle page polls the jobs list every 5 s, and every second while a job runs.
    expect(running).to_have_text("1", timeout=9_000)
    httpx.post(f"{gateway.address}/jobs/{job_id}/cancel")
    expect(running).to_have_text("0", timeout=9_000)


def test_form_messages_last_only_as_long_as_what_they_are_about(page, gateway):
    sent = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)
    rows = page.get_by_test_id("text-num-samples")
    rows.fill("")
    page.get_by_test_id("submit-text").click()
    error = page.get_by_test_id("text-error")
    # An emptied Rows field is an error, not the gateway's default of 100 rows.
    expect(error).to_have_text("num_samples: the Rows field is empty; enter a number")
    expect(rows).to_be_focused()
    assert not sent
    rows.fill("3")
    expect(error).to_be_hidden()  # fixing the input retires the message about it

    job_id = submit(page, "text")
    expect(job_item(page, job_id).get_by_test_id("job-status")).to_have_text("completed", timeout=JOB_TIMEOUT_MS)
    expect(page.get_by_test_id("text-note")).to_have_text("")  # "Queued …" goes once the job has finished
    expect(error).to_be_hidden()

    page.get_by_test_id("tab-unified").click()
    options = page.get_by_test_id("form-unified").locator("summary")
    options.click()
    page.get_by_test_id("unified-steps").fill("")
    options.click()  # folded again: the error unfolds it to show the empty field
    page.get_by_test_id("submit-unified").click()
    expect(page.get_by_test_id("unified-error")).to_have_text("num_inference_steps: the Steps field is empty; enter a number")
    expect(page.get_by_test_id("unified-steps")).to_be_focused()
    assert sent == [f"{gateway.address}/generate/text"]


def test_temperature_steps_stay_inside_what_the_gateway_accepts(page):
    page.get_by_test_id("form-text").locator("summary").click()
    temperature = page.get_by_test_id("text-temperature")
    temperature.fill("0.05")
    temperature.press("ArrowDown")
    expect(temperature).to_have_value("0.05")  # the gateway rejects 0: "greater than 0"
    assert temperature.get_attribute("max") == "10"


SCHEMA_ROW_PROBLEMS = """form => {
  const problems = [];
  const fieldset = form.querySelector('fieldset').getBoundingClientRect();
  for (const row of form.querySelectorAll('.field-main')) {
    const parts = [...row.querySelectorAll('input, select, button, label:not(.sr-only)')];
    const boxes = parts.map((part) => [part, part.getBoundingClientRect()]);
    for (const [part, box] of boxes) {
      const name = part.dataset.testid || part.textContent;
      if (box.right > fieldset.right || box.left < fieldset.left) problems.push(`${name} leaves the card`);
      if (part.dataset.testid === 'field-enum' && box.width < 100) problems.push(`${name} is ${box.width}px wide`);
    }
    boxes.forEach(([a, p], i) => boxes.slice(i + 1).forEach(([b, q]) => {
      if (p.left < q.right - 1 && q.left < p.right - 1 && p.top < q.bottom - 1 && q.top < p.bottom - 1) {
        problems.push(`${a.dataset.testid || a.textContent} overlaps ${b.dataset.testid || b.textContent}`);
      }
    }));
  }
  return problems;
}"""


@pytest.mark.parametrize("width", [400, 1000])
def test_the_schema_builder_fits_narrow_screens_and_cards(page, width):
    # 400: a phone; 1000: two columns, where the Generate card is at its narrowest.
    page.set_viewport_size({"width": width, "height": 900})
    for kind in ("text", "unified"):
        page.get_by_test_id(f"tab-{kind}").click()
        form = page.get_by_test_id(f"form-{kind}")
        expect(form.get_by_test_id("field-enum")).to_be_visible()
        assert form.evaluate(SCHEMA_ROW_PROBLEMS) == []
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), kind


def test_a_seed_past_two_to_the_53_is_sent_exactly(page, gateway):
    page.get_by_test_id("tab-images").click()
    for testid, value in (("images-num", "1"), ("images-width", "64"), ("images-height", "64"), ("images-steps", "2")):
        page.get_by_test_id(testid).fill(value)
    page.get_by_test_id("images-seed").fill("9007199254740993")  # 2**53 + 1: a JavaScript number would send ...992
    job_id = submit(page, "images")
    assert httpx.get(f"{gateway.address}/status/{job_id}").json()["request"]["seed"] == 2**53 + 1


# What Pydantic v2's `Customer.model_json_schema()` returns for these models:
#   class Status(str, Enum): active = "active"; suspended = "suspended"
#   class Address(BaseModel): street: str; city: str; zip_code: str = Field(pattern=r"^[0-9]{5}$")
#   class Order(BaseModel): sku: str; quantity: int = Field(ge=1, le=100); price: float
#   class Customer(BaseModel):
#       name: str = Field(description="full name"); age: int = Field(ge=18, le=90)
#       email: Optional[str] = None; status: Status; vip: bool; address: Address; orders: list[Order]
PYDANTIC_CUSTOMER = {
    "$defs": {
        "Address": {
            "properties": {
                "street": {"title": "Street", "type": "string"},
                "city": {"title": "City", "type": "string"},
                "zip_code": {"pattern": "^[0-9]{5}$", "title": "Zip Code", "type": "string"},
            },
            "required": ["street", "city", "zip_code"],
            "title": "Address",
            "type": "object",
        },
        "Order": {
            "properties": {
                "sku": {"title": "Sku", "type": "string"},
                "quantity": {"maximum": 100, "minimum": 1, "title": "Quantity", "type": "integer"},
                "price": {"title": "Price", "type": "number"},
            },
            "required": ["sku", "quantity", "price"],
            "title": "Order",
            "type": "object",
        },
        "Status": {"enum": ["active", "suspended"], "title": "Status", "type": "string"},
    },
    "properties": {
        "name": {"description": "full name", "title": "Name", "type": "string"},
        "age": {"maximum": 90, "minimum": 18, "title": "Age", "type": "integer"},
        "email": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None, "title": "Email"},
        "status": {"$ref": "#/$defs/Status"},
        "vip": {"title": "Vip", "type": "boolean"},
        "address": {"$ref": "#/$defs/Address"},
        "orders": {"items": {"$ref": "#/$defs/Order"}, "title": "Orders", "type": "array"},
    },
    "required": ["name", "age", "status", "vip", "address", "orders"],
    "title": "Customer",
    "type": "object",
}


def submitted(page, kind: str):
    """Clicks the form's submit button; returns the POST /generate/{kind} request it sent."""
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith(f"/generate/{kind}")) as request:
        page.get_by_test_id(f"submit-{kind}").click()
    return request.value


def test_an_imported_pydantic_schema_shows_its_simple_fields_as_rows_and_the_rest_as_raw_json_and_is_sent_unchanged(page):
    form = page.get_by_test_id("form-text")
    page.get_by_test_id("text-import-open").click()
    page.get_by_test_id("text-import-file").set_input_files(
        files=[{"name": "customer.json", "mimeType": "application/json", "buffer": json.dumps(PYDANTIC_CUSTOMER, indent=2).encode()}]
    )
    expect(page.get_by_test_id("text-import-panel")).to_be_hidden()
    expect(page.get_by_test_id("text-import-summary")).to_contain_text("3 of its fields in the builder, 4 kept as raw JSON")

    rows = form.get_by_test_id("schema-field")
    expect(rows).to_have_count(3)
    assert [r.get_by_test_id("field-name").input_value() for r in rows.all()] == ["name", "age", "vip"]
    assert [r.get_by_test_id("field-type").input_value() for r in rows.all()] == ["string", "int", "bool"]
    assert rows.nth(0).get_by_test_id("field-description").input_value() == "full name"
    assert rows.nth(1).get_by_test_id("field-minimum").input_value() == "18"
    assert rows.nth(1).get_by_test_id("field-maximum").input_value() == "90"
    expect(rows.nth(1).get_by_test_id("field-kept")).to_have_text('Kept as imported: title "Age"')

    raw = form.get_by_test_id("schema-raw-field")
    expect(raw).to_have_count(4)
    names = [r.get_by_test_id("raw-field-name").input_value() for r in raw.all()]
    assert names == ["email", "status", "address", "orders"]
    for row, name in zip(raw.all(), names):
        expect(row).to_contain_text("raw JSON")
        assert json.loads(row.get_by_test_id("raw-field-json").input_value()) == PYDANTIC_CUSTOMER["properties"][name]
    expect(raw.nth(0)).to_contain_text("uses anyOf")
    expect(raw.nth(3)).to_contain_text("a list")
    rest = {k: v for k, v in PYDANTIC_CUSTOMER.items() if k != "properties"}
    assert json.loads(page.get_by_test_id("text-import-root").input_value()) == rest
    expect(page.get_by_test_id("text-raw-toggle")).to_be_disabled()

    page.get_by_test_id("text-num-samples").fill("2")
    request = submitted(page, "text")
    assert request.post_data_json["schema"] == PYDANTIC_CUSTOMER
    # The gateway may or may not take $defs and anyOf yet: the page shows whichever answer it gives.
    reply = request.response()
    assert reply.status in (202, 400), reply.text()
    if reply.status == 202:
        expect(job_item(page, reply.json()["job_id"])).to_be_visible()
    else:
        error = page.get_by_test_id("text-error")
        expect(error).to_contain_text("400")
        expect(error).to_contain_text(reply.json()["detail"])

    # Clearing the import gives back the builder as it was.
    page.get_by_test_id("text-import-clear").click()
    expect(raw).to_have_count(0)
    expect(page.get_by_test_id("text-import-summary")).to_be_hidden()
    expect(page.get_by_test_id("text-import-root")).to_be_hidden()
    assert [n.input_value() for n in form.get_by_test_id("field-name").all()] == ["customer_name", "age", "email", "plan", "signup_date"]
    expect(page.get_by_test_id("text-raw-toggle")).to_be_enabled()


def test_an_imported_schema_the_gateway_accepts_runs_and_an_edited_row_changes_only_its_property(page):
    schema = {
        "title": "Product",
        "type": "object",
        "properties": {
            "name": {"title": "Name", "type": "string", "maxLength": 20},
            "price": {"title": "Price", "type": "number", "minimum": 1},
            "in_stock": {"title": "In Stock", "type": "boolean"},
            "sku": {"type": "string", "pattern": "[A-Z]{3}-[0-9]{4}"},
        },
        "required": ["name", "price", "in_stock", "sku"],
    }
    form = page.get_by_test_id("form-text")
    page.get_by_test_id("text-import-open").click()
    page.get_by_test_id("text-import-text").fill(json.dumps(schema, indent=2))
    page.get_by_test_id("text-import-apply").click()
    rows = form.get_by_test_id("schema-field")
    expect(rows).to_have_count(4)
    expect(form.get_by_test_id("schema-raw-field")).to_have_count(0)
    assert json.loads(page.get_by_test_id("text-import-root").input_value()) == {k: v for k, v in schema.items() if k != "properties"}
    page.get_by_test_id("text-num-samples").fill("3")

    request = submitted(page, "text")
    assert request.post_data_json["schema"] == schema
    job_id = request.response().json()["job_id"]
    expect(job_item(page, job_id).get_by_test_id("job-status")).to_have_text("completed", timeout=JOB_TIMEOUT_MS)

    price = rows.nth(1)
    price.get_by_test_id("field-options-toggle").click()
    price.get_by_test_id("field-maximum").fill("500")
    request = submitted(page, "text")
    edited = {**schema["properties"], "price": {"title": "Price", "type": "number", "minimum": 1, "maximum": 500}}
    assert request.post_data_json["schema"] == {**schema, "properties": edited}
    job_id = request.response().json()["job_id"]
    expect(job_item(page, job_id).get_by_test_id("job-status")).to_have_text("completed", timeout=JOB_TIMEOUT_MS)
    table = page.get_by_test_id("job-view").get_by_test_id("preview-table")
    expect(table.locator("thead th")).to_have_text(["#", "name", "price", "in_stock", "sku"])
    expect(table.get_by_test_id("preview-row")).to_have_count(3)
    for price_text in table.locator("tbody tr td:nth-child(3)").all_inner_texts():
        assert 1 <= float(price_text) <= 500


def test_invalid_json_in_an_import_shows_where_it_breaks_and_sends_nothing(page):
    sent = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)
    form = page.get_by_test_id("form-text")
    page.get_by_test_id("text-import-open").click()
    # A value left out: Chromium names no position for an unexpected token, the page finds it.
    page.get_by_test_id("text-import-text").fill('{"type": "object",\n  "properties": {"a": }\n}')
    page.get_by_test_id("text-import-apply").click()
    error = page.get_by_test_id("text-import-error")
    expect(error).to_contain_text("Cannot import the pasted text: not valid JSON")
    expect(error).to_contain_text("(line 2 column 23)")
    expect(form.get_by_test_id("schema-field")).to_have_count(5)  # the builder is as it was
    expect(page.get_by_test_id("text-import-summary")).to_be_hidden()

    # Raw JSON broken after a good import stops the submit too, naming the field.
    page.get_by_test_id("text-import-text").fill(json.dumps(PYDANTIC_CUSTOMER))
    page.get_by_test_id("text-import-apply").click()
    form.get_by_test_id("schema-raw-field").nth(2).get_by_test_id("raw-field-json").fill('{"$ref": ')
    page.get_by_test_id("submit-text").click()
    expect(page.get_by_test_id("text-error")).to_contain_text("schema.address: its raw JSON is not valid JSON")
    page.wait_for_timeout(500)  # time for a request that should not go
    assert sent == []


def test_a_gateway_with_api_keys_gets_a_key_from_the_prompt_and_every_call_and_link_carries_it(browser, text_service, tmp_path):
    secret = "ui-secret-0123456789"
    keyed = start_gateway(tmp_path, text_service.address, "127.0.0.1:1", tmp_path / "data", SDG_API_KEYS=f"ui:{secret}")
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{keyed.address}/ui")
        dialog = page.get_by_test_id("key-dialog")
        expect(dialog).to_be_visible()
        expect(page.get_by_test_id("key-message")).to_have_text("This gateway needs an API key.")
        page.get_by_test_id("key-input").fill("not-the-key")
        page.get_by_test_id("key-submit").click()
        expect(page.get_by_test_id("key-message")).to_have_text("The gateway did not accept that key. Enter another.")
        page.get_by_test_id("key-input").fill(secret)
        page.get_by_test_id("key-submit").click()
        expect(dialog).to_be_hidden()
        assert page.evaluate("sessionStorage.getItem('sdg-api-key')") == secret

        page.get_by_test_id("text-num-samples").fill("3")
        job_id = submit(page, "text")
        item = job_item(page, job_id)
        expect(item.get_by_test_id("job-status")).to_have_text("completed", timeout=JOB_TIMEOUT_MS)
        view = page.get_by_test_id("job-view")
        expect(view.get_by_test_id("preview-row")).to_have_count(3)  # read with the key in a header
        link = view.get_by_test_id("result-file").first
        href = link.get_attribute("href")
        assert href.endswith(f"?api_key={secret}"), href
        assert httpx.get(f"{keyed.address}{href}").status_code == 200
        assert httpx.get(f"{keyed.address}/status/{job_id}").status_code == 401
    finally:
        context.close()
        keyed.stop()


def test_a_seed_data_file_is_uploaded_and_its_checked_columns_are_carried_into_the_rows(page, gateway, tmp_path):
    seeds = tmp_path / "cities.csv"
    seeds.write_text("customer_name,town\nAda Lovelace,London\nAlan Turing,Wilmslow\n", encoding="utf-8")
    form = page.get_by_test_id("form-text")
    form.get_by_test_id("text-seed-data").locator("summary").click()
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/datasets")) as reply:
        page.get_by_test_id("text-seed-file").set_input_files(str(seeds))
    assert reply.value.status == 201, reply.value.text()
    dataset_id = reply.value.json()["dataset_id"]
    expect(page.get_by_test_id("text-seed-info")).to_have_text(f"cities.csv: 2 rows ({dataset_id})")
    columns = page.get_by_test_id("text-seed-column")
    expect(columns).to_have_count(2)
    columns.first.check()  # customer_name, a field of the form's example schema
    page.get_by_test_id("text-num-samples").fill("4")
    job_id = submit(page, "text")
    expect(job_item(page, job_id).get_by_test_id("job-status")).to_have_text("completed", timeout=JOB_TIMEOUT_MS)

    assert httpx.get(f"{gateway.address}/status/{job_id}").json()["request"]["seed_data"] == {
        "dataset_id": dataset_id, "columns": ["customer_name"], "mode": "carry", "replace": None, "k": None,
    }  # fmt: skip
    rows = [json.loads(line) for line in httpx.get(f"{gateway.address}/jobs/{job_id}/rows").text.splitlines()]
    assert len(rows) == 4 and {row["customer_name"] for row in rows} <= {"Ada Lovelace", "Alan Turing"}
