"""Settings: ``liucun.toml`` in the workspace, overridden by ``LIUCUN_*`` environment variables.

Nested settings use ``__`` in environment variables, e.g.
``LIUCUN_INGEST__FUTURE_TOLERANCE_HOURS=48``.
"""

from __future__ import annotations

import zoneinfo
from pathlib import Path

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from liucun.core._errors import ConfigError

SETTINGS_FILE = "liucun.toml"


def check_timezone(name: str) -> str:
    """Return ``name`` if it is an IANA time zone, else raise :class:`ConfigError`."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"unknown time zone {name!r}; use an IANA name such as 'UTC', 'Asia/Shanghai' "
            "or 'Europe/Berlin'"
        ) from None
    return name


class IngestSettings(BaseModel):
    """How ingestion validates input."""

    future_tolerance_hours: float = Field(
        24.0, ge=0, description="Timestamps later than now + this many hours are rejected."
    )
    custom_event_types: list[str] = Field(
        default_factory=list, description="Event types accepted besides the standard ones."
    )
    source_timezone: str = Field("UTC", description="Time zone of naive timestamps in input files.")
    timestamp_format: str | None = Field(
        None, description="strftime format of timestamps, e.g. '%d/%m/%Y %H:%M'; None = ISO 8601."
    )
    max_reject_rate: float = Field(
        1.0, ge=0, le=1, description="Fail the load when more than this share is quarantined."
    )
    currency: str | None = Field(
        None,
        description="ISO 4217 currency of order/refund rows that carry none, e.g. 'CNY'; "
        "None = such rows are quarantined.",
    )
    max_order_value: float = Field(
        1e9,
        gt=0,
        description="Order/refund revenue above this (in the row's own currency) is "
        "quarantined as implausible.",
    )

    @field_validator("source_timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return check_timezone(value)

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        return check_currency_code(value, "ingest.currency")


def check_currency_code(value: str | None, setting: str) -> str | None:
    """Upper-case ``value`` if it has the shape of an ISO 4217 code, else raise ``ValueError``."""
    # The shape only: ingest checks the code against ISO 4217 (core cannot import it).
    if value is None:
        return None
    code = value.strip().upper()
    if len(code) != 3 or not code.isascii() or not code.isalpha():
        raise ValueError(
            f"{setting} {value!r} is not an ISO 4217 code; use three letters "
            "such as CNY, USD or EUR"
        )
    return code


DEFAULT_FUNNEL = ("visit", "view", "add_to_cart", "order")


class ReportingSettings(BaseModel):
    """How figures are reported: currency, report cohorts, the report's funnel."""

    currency: str | None = Field(
        None,
        description="ISO 4217 code every money figure is converted to at the order date's "
        "FX rate (see 'liucun ingest fx'); None = amounts are reported as recorded.",
    )
    heatmap_cohorts: int = Field(
        12, ge=1, le=120, description="The report's heatmap shows this many most recent cohorts."
    )
    funnel: list[str] = Field(
        default_factory=lambda: list(DEFAULT_FUNNEL),
        min_length=2,
        description="Event types of the report's funnel, in order.",
    )

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        return check_currency_code(value, "reporting.currency")


class StateSettings(BaseModel):
    """Where the operational state lives."""

    url: str | None = Field(
        None,
        description="SQLAlchemy URL of the state database; None = state.sqlite in the "
        "workspace. PostgreSQL: 'postgresql+psycopg://user@host:5432/database'.",
    )


class Settings(BaseSettings):
    """Workspace settings. Precedence: arguments > ``LIUCUN_*`` env > ``liucun.toml``."""

    model_config = SettingsConfigDict(
        env_prefix="LIUCUN_", env_nested_delimiter="__", extra="forbid"
    )

    warehouse_url: str = Field(
        "duckdb",
        description="'duckdb' (the workspace's file), 'duckdb:///path/file.duckdb', "
        "'pyspark' (local mode) or 'pyspark://MASTER' (e.g. spark://host:7077).",
    )
    reporting_timezone: str = "UTC"
    mapping: dict[str, str] = Field(
        default_factory=dict,
        description="Input column → canonical column, e.g. amount = 'revenue'.",
    )
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    state: StateSettings = Field(default_factory=StateSettings)
    reporting: ReportingSettings = Field(default_factory=ReportingSettings)

    @field_validator("reporting_timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return check_timezone(value)


def load_settings(workspace: Path | None = None, **overrides: object) -> Settings:
    """Read settings for ``workspace`` (its ``liucun.toml`` if present) plus the environment."""
    toml_file = (workspace / SETTINGS_FILE) if workspace is not None else None

    class _WorkspaceSettings(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
            if toml_file is not None and toml_file.is_file():
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
            return tuple(sources)

    try:
        return _WorkspaceSettings(**overrides)  # type: ignore[arg-type]
    except ConfigError:
        raise
    except Exception as exc:  # pydantic ValidationError or a TOML syntax error
        where = str(toml_file) if toml_file is not None else "the environment"
        raise ConfigError(f"invalid settings in {where}: {_first_line(exc)}") from None


def _first_line(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text[:400]
