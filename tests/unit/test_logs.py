"""One logging setup from Settings (PMO_LOG_LEVEL, PMO_LOG_FORMAT), and .env.example complete."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from pmo.logs import configure
from pmo.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_text_records_carry_a_utc_timestamp_and_the_level_is_a_setting(
        restore_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    configure(settings(log_level="warning"))
    logging.getLogger("pmo.test").info("not shown")
    logging.getLogger("pmo.test").warning("shown %d", 1)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z WARNING pmo\.test: shown 1",
                        lines[0]), lines


def test_json_records_keep_their_extra_fields(restore_logging: None,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    configure(settings(log_format="json"))
    logging.getLogger("pmo.test").info("stored", extra={"source": "urn:x", "event_id": "e-1"})
    record = json.loads(capsys.readouterr().err)
    assert record["message"] == "stored" and record["level"] == "INFO"
    assert (record["source"], record["event_id"]) == ("urn:x", "e-1")
    assert record["time"].endswith("Z")


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_uvicorn_colour_copy_of_a_message_is_left_out(
        log_format: str, restore_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    # uvicorn logs "Started server process [%d]" with extra={"color_message": ...}
    configure(settings(log_format=log_format))
    logging.getLogger("uvicorn.error").info(
        "Started server process [%d]", 42,
        extra={"color_message": "Started server process [\x1b[36m%d\x1b[0m]", "source": "s"})
    err = capsys.readouterr().err
    assert "Started server process [42]" in err
    assert "color_message" not in err and "\x1b" not in err and "\\u001b" not in err
    assert "source" in err  # other extra fields are still kept


def test_keys_and_levels_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMO_LOG_LEVEL", "debug")
    monkeypatch.setenv("PMO_DEMO_API_KEY", "demo-secret")
    monkeypatch.setenv("PMO_PUBLISH_API_KEY", "pub-secret")
    loaded = settings()
    assert loaded.log_level == "DEBUG"
    assert loaded.demo_api_key is not None and loaded.publish_api_key is not None
    assert loaded.demo_api_key.get_secret_value() == "demo-secret"
    assert "pub-secret" not in repr(loaded)  # a secret is never printed


def test_env_example_lists_every_setting() -> None:
    text = (ROOT / ".env.example").read_text()
    listed = {m.lower() for m in re.findall(r"^#?\s*PMO_([A-Z_]+)=", text, re.MULTILINE)}
    assert listed == set(Settings.model_fields)
