"""sdg.service_metrics and the settings both model services read for metrics and logs."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest
from pydantic import ValidationError

from image_service.settings import ImageSettings
from sdg.service_metrics import OUTCOMES, image_metrics, text_metrics
from tests.scrape import Scrape
from text_service.settings import TextSettings


@pytest.mark.parametrize(("settings_cls", "default_port"), [(TextSettings, 9101), (ImageSettings, 9102)])
def test_each_service_has_its_own_default_port_and_empty_or_0_turns_it_off(monkeypatch, settings_cls, default_port):
    monkeypatch.delenv("SDG_METRICS_PORT", raising=False)
    assert settings_cls().metrics_port == default_port
    for off in ("", "0"):
        monkeypatch.setenv("SDG_METRICS_PORT", off)
        assert settings_cls().metrics_port == 0


@pytest.mark.parametrize(("name", "value"), [("SDG_METRICS_PORT", "70000"), ("SDG_METRICS_PORT", "-1"), ("SDG_LOG_FORMAT", "xml")])
def test_a_bad_port_or_log_format_is_refused_not_ignored(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=name):
        TextSettings()


def test_every_outcome_is_exported_from_the_start_and_the_two_services_apart():
    text, image = text_metrics(), image_metrics()
    text.call_ended("failed")
    scrape = Scrape(generate_latest(text.registry).decode())
    assert {s.labels["outcome"]: s.value for s in scrape.samples if s.name == "sdg_text_calls_total"} == {
        outcome: 1.0 if outcome == "failed" else 0.0 for outcome in OUTCOMES
    }
    assert Scrape(generate_latest(image.registry).decode()).value("sdg_image_calls_total", outcome="failed") == 0


def test_steps_per_second_is_the_last_batch_and_an_empty_batch_leaves_it():
    metrics = image_metrics()
    metrics.stepped(10, 2.0)
    metrics.stepped(0, 0.0)
    scrape = Scrape(generate_latest(metrics.registry).decode())
    assert scrape.value("sdg_image_denoise_steps_per_second") == 5.0
    assert scrape.value("sdg_image_denoise_steps_total") == 10
