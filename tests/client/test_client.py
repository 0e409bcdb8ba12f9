"""sdg_client end to end: the client against the real gateway and the real tiny-model services of
tests/conftest.py, submitting jobs and loading what they made over HTTP."""

from __future__ import annotations

import zipfile

import pandas as pd
import pytest
from pydantic import BaseModel

from sdg_client import SDG, JobCancelled, JobFailed, SDGError
from tests.conftest import free_port, start_gateway

POLL_S = 0.1
# The gateway's smallest resolution and few steps keep image jobs to a second or so on a CPU.
TINY_IMAGES = {"resolution": (64, 64), "num_inference_steps": 2}
FLAT_SCHEMA = {
    "name": "string",
    "age": {"type": "integer", "minimum": 18, "maximum": 90},
    "score": "float",
    "member": "bool",
}


class Customer(BaseModel):
    name: str
    age: int
    score: float
    member: bool


@pytest.fixture
def sdg(gateway):
    with SDG(gateway.address, timeout=30) as client:
        yield client


def test_a_text_job_from_a_dict_schema_loads_as_a_dataframe(sdg, capsys):
    job = sdg.text(FLAT_SCHEMA, 5, seed=3).wait(progress=True, poll_interval=POLL_S)
    assert job.status().status == "completed" and job.partial is False
    assert {"data.json", "schema.json", "manifest.json"} <= set(job.files())
    frame = job.to_pandas()
    assert list(frame.columns) == ["name", "age", "score", "member"] and len(frame) == 5
    assert (frame["age"].dtype, frame["score"].dtype, frame["member"].dtype) == ("int64", "float64", "bool")
    assert frame["age"].between(18, 90).all()
    assert "5/5" in capsys.readouterr().err  # the progress bar's last state


def test_a_pydantic_model_round_trips_through_to_models(sdg):
    job = sdg.text(Customer, 4, output_format="jsonl").wait(progress=False, poll_interval=POLL_S)
    assert job.status().request["schema"] == Customer.model_json_schema()
    customers = job.to_models()
    assert len(customers) == 4 and all(isinstance(c, Customer) for c in customers)
    assert [c.model_dump() for c in customers] == job.rows()


def test_a_pydantic_model_with_nested_optional_and_enum_fields_gives_instances_and_a_dataframe(sdg):
    from tests.text_service.schemas import Customer as Shopper

    job = sdg.text(Shopper, 5, output_format="parquet", seed=6).wait(progress=False, poll_interval=POLL_S)
    shoppers = job.to_models()
    assert len(shoppers) == 5 and all(isinstance(s, Shopper) for s in shoppers)
    frame = job.to_pandas()
    assert len(frame) == 5 and {"id", "tier", "address", "items"} <= set(frame.columns)


def test_to_models_without_a_model_class_says_how_to_pass_one(sdg):
    job_id = sdg.text(FLAT_SCHEMA, 2).wait(progress=False, poll_interval=POLL_S).id
    looked_up = sdg.job(job_id)
    with pytest.raises(ValueError, match=r"job\.to_models\(Customer\)"):
        looked_up.to_models()
    assert all(isinstance(c, Customer) for c in looked_up.to_models(Customer))


@pytest.mark.parametrize("output_format", ["parquet", "csv"])
def test_parquet_and_csv_outputs_load_with_their_types(sdg, output_format):
    job = sdg.text(FLAT_SCHEMA, 4, output_format=output_format, seed=5).wait(progress=False, poll_interval=POLL_S)
    assert f"data.{output_format}" in job.files()
    frame = job.to_pandas()
    assert (frame["age"].dtype, frame["score"].dtype, frame["member"].dtype) == ("int64", "float64", "bool")
    assert pd.api.types.is_string_dtype(frame["name"])
    table = job.to_arrow()
    assert {f.name: str(f.type) for f in table.schema} == {"name": "string", "age": "int64", "score": "double", "member": "bool"}
    for row in job.rows():
        assert (type(row["name"]), type(row["age"]), type(row["score"]), type(row["member"])) == (str, int, float, bool)


def test_an_images_job_loads_as_an_imagefolder_dataset(sdg, tmp_path):
    job = sdg.images(["a red barn", "a cat on a sofa"], 2, annotations=["caption"], seed=1, **TINY_IMAGES)
    job.wait(progress=False, poll_interval=POLL_S)
    dataset = job.to_datasets(tmp_path)
    assert len(dataset) == 2
    assert dataset[0]["image"].size == (64, 64)
    assert dataset["prompt"] == ["a red barn", "a cat on a sofa"]
    assert [row["file_name"] for row in job.rows()] == ["image_00000.png", "image_00001.png"]


def test_a_unified_job_pairs_its_rows_with_images_in_every_loader(sdg, tmp_path):
    job = sdg.unified(
        {"product": {"type": "string", "maxLength": 12}, "price": "float"},
        ["A {product} on white background"],
        3,
        num_images=2,
        output_format="parquet",
        seed=2,
        **TINY_IMAGES,
    ).wait(progress=False, poll_interval=POLL_S)
    frame = job.to_pandas()
    assert list(frame.columns) == ["product", "price", "image_file"]
    assert frame["image_file"].tolist()[:2] == ["images/image_00000.png", "images/image_00001.png"]
    assert pd.isna(frame["image_file"].iloc[2])
    dataset = job.to_datasets(tmp_path)
    assert dataset[0]["image"].size == (64, 64) and dataset[2]["image"] is None
    assert dataset["product"] == frame["product"].tolist()


def test_wait_returns_a_job_that_completed_short_with_partial_set(sdg):
    # A boolean column allows two distinct rows, so five cannot be made.
    job = sdg.text({"yes": "bool"}, 5).wait(progress=False, poll_interval=POLL_S)
    assert job.partial is True and job.status().status == "completed"
    assert 1 <= len(job.rows()) <= 2


def test_a_finished_job_downloads_as_its_files_or_one_archive(sdg, tmp_path):
    job = sdg.text(FLAT_SCHEMA, 2, output_format="csv").wait(progress=False, poll_interval=POLL_S)
    files = job.files()
    folder = job.download(tmp_path / "files")
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == sorted(files)
    archive = job.download(tmp_path, archive=True)
    assert archive.name.startswith("text_data_") and archive.suffix == ".zip"
    with zipfile.ZipFile(archive) as zipped:
        assert sorted(name.split("/", 1)[1] for name in zipped.namelist()) == sorted(files)


def test_a_bad_request_raises_sdg_error_whose_detail_names_the_field(sdg):
    with pytest.raises(SDGError) as invalid:
        sdg.text({"a": "int"}, 0)
    assert invalid.value.status_code == 422
    [error] = invalid.value.detail  # FastAPI's list, as sent
    assert error["loc"] == ["body", "num_samples"] and "num_samples" in str(invalid.value)

    with pytest.raises(SDGError) as unhonoured:
        sdg.text({"age": {"type": "integer", "minimum": 90, "maximum": 18}}, 2)
    assert unhonoured.value.status_code == 400
    assert isinstance(unhonoured.value.detail, str) and unhonoured.value.detail.startswith("schema.age")


def test_unknown_keyword_arguments_are_sent_to_the_api_as_they_are(sdg):
    with pytest.raises(SDGError) as rejected:
        sdg.images(["x"], 1, num_inference_step=3)  # misspelt: the API names it, not the client
    assert rejected.value.status_code == 422
    assert [error["loc"] for error in rejected.value.detail] == [["body", "num_inference_step"]]


def test_an_unknown_job_is_an_sdg_error_with_status_404(sdg):
    with pytest.raises(SDGError) as missing:
        sdg.job("job_000000000000").status()
    assert missing.value.status_code == 404 and "job_000000000000" in missing.value.detail


def test_an_api_key_goes_as_a_bearer_token_which_the_gateway_ignores_for_now(gateway):
    with SDG(gateway.address, api_key="sk-test") as sdg:
        assert sdg.http.headers["authorization"] == "Bearer sk-test"
        assert sdg.health()["status"] == "healthy"
        assert all(summary.job_id.startswith("job_") for summary in sdg.jobs())


def test_wait_on_a_failed_job_raises_with_its_error(service_logs, text_service, tmp_path):
    dead = f"127.0.0.1:{free_port()}"
    gateway = start_gateway(service_logs, text_service.address, dead, tmp_path, SDG_SERVICE_START_WAIT_S="1")
    try:
        with SDG(gateway.address) as sdg:
            job = sdg.images(["x"], 1, **TINY_IMAGES)
            with pytest.raises(JobFailed) as failed:
                job.wait(progress=False, poll_interval=POLL_S)
    finally:
        gateway.stop()
    assert failed.value.error.startswith(f"image service unavailable at {dead}")
    assert failed.value.status.status == "failed" and dead in str(failed.value)


def test_wait_on_a_cancelled_job_raises_and_resume_completes_it(sdg):
    job = sdg.images(["a dog"], 4, resolution=(64, 64), num_inference_steps=40, seed=4)
    job.cancel()
    with pytest.raises(JobCancelled) as cancelled:
        job.wait(progress=False, poll_interval=POLL_S)
    assert cancelled.value.status.status == "cancelled"
    job.resume().wait(progress=False, poll_interval=POLL_S)
    assert job.partial is False and len(job.rows()) == 4
