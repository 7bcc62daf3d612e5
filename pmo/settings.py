"""All configuration, from ``PMO_*`` environment variables or a ``.env`` file, checked at start."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from storage.urls import StoreUrl

Role = Literal["publisher", "viewer", "auditor", "admin"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PMO_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path("./pmo-data"), description="where the embedded SQLite files live")
    event_store_url: str | None = Field(None, description="sqlite:///path or postgresql://...")
    projection_store_url: str | None = Field(None, description="same forms, for projections")
    kafka_bootstrap: str | None = Field(None, description="Kafka servers; unset = embedded mode")
    topic_prefix: str = Field("", description="prefix of topic names and consumer group ids")
    kafka_partitions: int = Field(6, ge=1, description="partitions of topics the workers create")
    api_keys: dict[str, list[Role]] = Field(
        default_factory=dict, description='JSON: key -> roles, e.g. {"k1": ["publisher"]}')
    max_body_bytes: int = Field(1024 * 1024, ge=1024, description="largest accepted message")
    max_header_bytes: int = Field(
        64 * 1024, ge=8 * 1024, description="pmo serve: largest request line and headers; "
        "larger is refused with 431")
    ingest_batch_size: int = Field(500, ge=1, le=10_000)
    park_seconds: float = Field(
        300, ge=0, description="pmo ingest: how long an event naming an aggregate that does "
        "not exist yet is parked and retried before it is rejected (0: reject at once)")
    poll_interval_ms: int = Field(20, ge=1, description="embedded runner's notification poll")
    runner_process: bool = Field(
        True, description="pmo serve, embedded: feed the views from a child process "
        "(a core of its own) rather than a thread of the API process")
    dashboard_max_streams: int = Field(
        32, ge=1, description="open live streams (GET /v1/stream) the dashboard may hold at once")

    view_cache_bytes: int = Field(
        64 * 1024 * 1024, ge=0, description="the API's cache of rendered views, in bytes "
        "(keys and bodies; oldest first out)")
    max_batch_events: int = Field(5000, ge=1, description="most events in one POST /v1/events "
                                  "batch; more is refused with 413")
    log_level: LogLevel = Field("INFO", description="DEBUG, INFO, WARNING, ERROR or CRITICAL")
    log_format: Literal["text", "json"] = Field(
        "text", description="text: one line per record; json: one JSON object per line")
    access_log: bool = Field(
        False, description="pmo serve: log every request (off by default: it costs "
        "about a third of the read throughput)")
    publish_api_key: SecretStr | None = Field(
        None, description="pmo publish --api: a key with the publisher role")
    demo_api_key: SecretStr | None = Field(
        None, description="pmo demo --api: a key with the publisher role")

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("event_store_url", "projection_store_url")
    @classmethod
    def _parseable(cls, value: str | None) -> str | None:
        if value is not None:
            StoreUrl.parse(value)  # fail fast with a message naming the URL
        return value

    @property
    def event_store(self) -> StoreUrl:
        if self.event_store_url:
            return StoreUrl.parse(self.event_store_url)
        return StoreUrl.sqlite_in(self.data_dir, "events.sqlite")

    @property
    def projection_store(self) -> StoreUrl:
        if self.projection_store_url:
            return StoreUrl.parse(self.projection_store_url)
        return StoreUrl.sqlite_in(self.data_dir, "projections.sqlite")

    @property
    def kafka_mode(self) -> bool:
        return bool(self.kafka_bootstrap)

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"
