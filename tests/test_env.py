"""sdg.env: the list of variables the components read stays what their settings read, and a
misspelt one is named with the variable it resembles."""

import logging

import pytest
from pydantic import AliasChoices

from gateway.settings import GatewaySettings
from image_service.settings import ImageSettings
from sdg import env
from text_service.settings import TextSettings


def sdg_names(settings_cls) -> set[str]:
    """The SDG_ variables a pydantic-settings class reads: its aliases, or its prefix and field name."""
    names = set()
    for field_name, field in settings_cls.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, str):
            names.add(alias)
        elif isinstance(alias, AliasChoices):
            names.update(choice for choice in alias.choices if isinstance(choice, str))
        else:
            names.add(settings_cls.model_config.get("env_prefix", "") + field_name.upper())
    return {name for name in names if name.startswith("SDG_")}


@pytest.mark.parametrize(
    ("settings_cls", "listed"),
    [(GatewaySettings, env.GATEWAY), (TextSettings, env.TEXT_SERVICE), (ImageSettings, env.IMAGE_SERVICE)],
)
def test_the_list_is_what_each_component_reads(settings_cls, listed):
    assert sdg_names(settings_cls) == listed


def test_a_variable_no_component_reads_is_named_with_the_one_it_resembles(caplog):
    environ = {"SDG_TEXT_SERVICE_ADDR": "10.0.0.2:50051", "SDG_OUTPUT_DIR": "/data", "SDG_XYZZY": "1", "PATH": "/bin"}
    assert env.unread_variables(environ) == ["SDG_TEXT_SERVICE_ADDR (did you mean SDG_TEXT_SERVICE_ADDRS?)", "SDG_XYZZY"]
    with caplog.at_level(logging.WARNING):
        env.warn_about_unread_variables(logging.getLogger("test"), {"SDG_IMAGE_COMPILE_MOD": "default"})
    assert caplog.messages == ["SDG_IMAGE_COMPILE_MOD (did you mean SDG_IMAGE_COMPILE_MODE?) is set, but no SDG component reads it: it has no effect"]
