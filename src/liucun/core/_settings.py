"""Settings: ``liucun.toml`` in the workspace, overridden by ``LIUCUN_*`` environment variables.

Nested settings use ``__`` in environment variables, e.g.
``LIUCUN_INGEST__FUTURE_TOLERANCE_HOURS=48``.
"""

from __future__ import annotations

import re
import zoneinfo
from pathlib import Path
from typing import Literal

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


class ChannelSettings(BaseModel):
    """One delivery channel: ``[channels.NAME]`` in liucun.toml.

    ``NAME`` is a channel of a journey's message (email, sms, push, wechat, whatsapp,
    in_app, webhook) or a provider another channel falls back to. ``kind`` picks the
    adapter: ``smtp`` (host, port, sender), ``webhook`` (url, secret: Standard Webhooks
    signing), ``http`` (url, api_key: an SMS / push / WeChat / WhatsApp provider's JSON
    API, docs/journeys.md gives the payloads) or ``file`` (JSON lines in the workspace,
    for dry runs).
    """

    model_config = {"extra": "forbid"}

    kind: Literal["smtp", "webhook", "http", "file"] | None = Field(
        None, description="Adapter; None = smtp for email, webhook for webhook, else http."
    )
    host: str | None = Field(None, description="SMTP host.")
    port: int | None = Field(None, ge=1, le=65535, description="SMTP port.")
    sender: str | None = Field(None, description="SMTP From address, e.g. 'Shop <news@shop.cn>'.")
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    url: str | None = Field(None, description="Webhook or provider endpoint.")
    secret: str | None = Field(
        None, description="Standard Webhooks secret ('whsec_' + base64) for webhook signing."
    )
    api_key: str | None = Field(None, description="Provider API key (sent as a bearer token).")
    path: str | None = Field(None, description="file channel: the JSON-lines file to append to.")
    dedupes: bool | None = Field(
        None,
        description="The receiver drops a repeated idempotency key, so a message in doubt "
        "after a crash may be resent. None = true for webhook and http, false for smtp/file.",
    )
    fallback: str | None = Field(
        None, description="Another [channels.X] tried when this provider keeps failing."
    )
    timeout_s: float = Field(10.0, gt=0, description="Per-attempt timeout.")
    max_attempts: int = Field(5, ge=1, description="Attempts before the row is failed.")
    backoff_s: float = Field(30.0, gt=0, description="First retry delay; doubles, with jitter.")
    requires_unsubscribe: bool | None = Field(
        None, description="Templates must carry an unsubscribe link; None = true for email."
    )


class GuardSettings(BaseModel):
    """Guards every journey send passes (``[guards]``)."""

    quiet_start: str = Field("21:00", description="Local time quiet hours start (HH:MM).")
    quiet_end: str = Field("08:00", description="Local time quiet hours end (HH:MM).")
    max_per_day: int | None = Field(
        2, ge=0, description="Messages per customer per local calendar day, all journeys."
    )
    max_per_week: int | None = Field(
        5, ge=0, description="Messages per customer per 7 local calendar days, all journeys."
    )
    channel_max_per_day: dict[str, int] = Field(
        default_factory=dict, description="Per-channel daily caps, e.g. {sms = 1}."
    )
    coupon_value_cap: float | None = Field(
        None, ge=0, description="Coupon face value per customer per 30 days; None = the program's."
    )
    forbidden_phrases: list[str] = Field(
        default_factory=list, description="Templates containing one of these are refused."
    )
    consent_required: bool = Field(
        True, description="Marketing sends need a granted consent record for purpose+channel."
    )

    @field_validator("quiet_start", "quiet_end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        parts = value.split(":")
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise ValueError(f"{value!r} is not a time of day; write HH:MM such as '21:00'")
        hour, minute = int(parts[0]), int(parts[1])
        if not (0 <= hour < 24 and 0 <= minute < 60):
            raise ValueError(f"{value!r} is not a time of day; write HH:MM such as '21:00'")
        return f"{hour:02d}:{minute:02d}"


class JourneySettings(BaseModel):
    """Journey defaults (``[journeys]``)."""

    control_share: float = Field(
        0.1,
        ge=0,
        lt=1,
        description="Default control arm of every journey (0 needs allow_no_control).",
    )
    batch_size: int = Field(500, ge=1, description="Rows a worker claims at a time.")
    poll_s: float = Field(5.0, gt=0, description="How often a worker looks for new work.")
    unsubscribe_base_url: str = Field(
        "https://example.invalid/liucun/unsubscribe",
        description="Messages' one-click unsubscribe links start with this (a keyed token "
        "per customer and channel follows).",
    )
    shop_name: str = Field("", description="The shop's name, for templates ({{ shop_name }}).")


class ServeSettings(BaseModel):
    """The HTTP service (``[serve]``): ``liucun serve`` and :func:`liucun.api.create_app`."""

    model_config = {"extra": "forbid"}

    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8000, ge=1, le=65535, description="TCP port.")
    workers: int = Field(1, ge=1, le=64, description="Server processes (the loader runs in one).")
    max_body_bytes: int = Field(
        5_000_000, ge=1_000, description="Larger request bodies are refused (413)."
    )
    max_batch: int = Field(
        1000, ge=1, le=100_000, description="Most events (or users) in one request."
    )
    rate_per_s: float = Field(
        200.0, gt=0, description="Requests per second per API key (token bucket refill)."
    )
    burst: int = Field(400, ge=1, description="Requests an API key may send at once.")
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed by CORS, e.g. ['https://shop.example.com']; empty = CORS off.",
    )
    future_skew_s: float = Field(
        300.0,
        ge=0,
        description="An event time later than now + this many seconds is refused (422).",
    )
    key_cache_s: float = Field(
        2.0,
        ge=0,
        description="How long a checked API key is trusted before state is read again "
        "(a key revoked elsewhere stops working within this time).",
    )
    loader_interval_s: float = Field(
        2.0, gt=0, description="How often the inbox is loaded into the warehouse."
    )
    loader_batch: int = Field(
        50_000, ge=1, description="Most inbox rows one load moves into the warehouse."
    )
    refresh_batch: int = Field(
        2_000,
        ge=0,
        description="Most customers a loader round re-scores after loading their events "
        "(the rest wait for the next rounds); 0 turns the refresh off.",
    )
    loader_yield_above: float = Field(
        5_000.0,
        ge=0,
        description="While requests commit more inbox rows per second than this (a "
        "burst), the loader skips its rounds and leaves the CPU to them …",
    )
    loader_max_delay_s: float = Field(
        20.0,
        ge=0,
        description="… for at most this long; then it loads whatever the burst.",
    )
    refresh_max_delay_s: float = Field(
        30.0,
        ge=0,
        description="While the inbox holds more than one round (a burst), loading goes "
        "first and the refresh of loaded customers waits at most this long.",
    )
    decide_holdout: float = Field(
        0.1,
        ge=0,
        lt=1,
        description="Share of customers POST /v1/decide never treats (hashed on the user id).",
    )
    decide_refresh_s: float = Field(
        60.0,
        gt=0,
        description="How often the decider's in-memory snapshot of every customer is rebuilt "
        "(customers whose events the loader moved are rebuilt after each round).",
    )


ALERT_MONITORS: tuple[str, ...] = (
    "retention",
    "conversion",
    "customer_risk",
    "retention_forecast",
    "coupon_cost",
    "sla_breach",
)
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _check_addresses(values: list[str], setting: str) -> list[str]:
    out = []
    for value in values:
        text = str(value).strip()
        if not _ADDRESS.match(text):
            raise ValueError(
                f"{setting}: {value!r} is not an e-mail address; write name@domain, "
                "e.g. 'growth-team@shop.cn'"
            )
        out.append(text)
    return out


class AlertTargets(BaseModel):
    """Who hears of an alert of one level (``[alerts.level1]`` …): e-mail addresses and
    webhook channels (names of ``[channels.NAME]`` entries of kind webhook)."""

    model_config = {"extra": "forbid"}

    email: list[str] = Field(default_factory=list, description="E-mail recipients.")
    webhook: list[str] = Field(
        default_factory=list,
        description="Webhook channels, e.g. ['ops_hook'] for [channels.ops_hook] "
        'kind = "webhook", url = …, secret = …',
    )

    @field_validator("email")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        return _check_addresses(value, "alerts email")


class AlertSettings(BaseModel):
    """Monitors and alerts (``[alerts]``; docs/alerts.md).

    Levels: 1 goes to the team (``level1``: a region's or the overall retention, the
    retention forecast, coupon cost), 2 to the owner of a product line or category
    (``owners``, plus ``level2``), 3 to one-to-one service (``level3``: a valuable
    customer at risk, a service task past its SLA).
    """

    model_config = {"extra": "forbid"}

    monitors: list[str] = Field(
        default_factory=lambda: list(ALERT_MONITORS),
        description="The monitors `liucun alerts run` runs: " + ", ".join(ALERT_MONITORS) + ".",
    )
    level1: AlertTargets = Field(default_factory=AlertTargets, description="The team channel.")
    level2: AlertTargets = Field(
        default_factory=AlertTargets, description="Every level-2 alert, besides its owner."
    )
    level3: AlertTargets = Field(
        default_factory=AlertTargets, description="One-to-one service (the service team)."
    )
    owners: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Owner e-mails per product line or category (the conversion_by "
        "value), e.g. {electronics = ['li.wei@shop.cn']}.",
    )
    weekly: list[str] = Field(
        default_factory=list, description="Recipients of the weekly report e-mail."
    )
    report_url: str | None = Field(
        None,
        description="Base URL the workspace's reports/ folder is served at; the weekly "
        "e-mail links the report there (None: it names the file's path).",
    )
    cockpit_url: str | None = Field(None, description="Link to the cockpit in alert e-mails.")
    notify_resolved: bool = Field(True, description="Tell the same targets when it resolves.")
    # seasonal baseline and the test
    window_days: int = Field(
        7, ge=1, le=28, description="Days each check compares (the last complete ones)."
    )
    baseline_weeks: int = Field(
        4, ge=2, le=26, description="Same weekdays of this many weeks give a day's baseline."
    )
    backtest_weeks: int = Field(
        8, ge=2, le=52, description="Weeks before the window that measure the noise."
    )
    alpha: float = Field(
        0.01,
        gt=0,
        lt=0.5,
        description="False-alarm rate per monitor and run (split over its scopes).",
    )
    # retention (level 1)
    retention_drop: float = Field(
        0.05, gt=0, lt=1, description="Smallest relative drop vs the baseline that alerts."
    )
    retention_by: str = Field("region", description="User or event column of the scopes.")
    retention_lookback_days: int = Field(
        90, ge=7, description="A customer is active on a day after an order in this many days."
    )
    # conversion (level 2)
    conversion_drop: float = Field(
        0.10, gt=0, lt=1, description="Smallest relative conversion drop that alerts."
    )
    conversion_by: str = Field("category", description="Event column: product line, category.")
    conversion_from: str = Field("view", description="Event type that starts a conversion.")
    conversion_to: str = Field("order", description="Event type that completes it.")
    # valuable customers at risk (level 3)
    vip_clv: float | None = Field(
        None, ge=0, description="CLV at or above which a customer is watched; None: off."
    )
    vip_risk: float = Field(0.6, gt=0, lt=1, description="Churn risk that raises the alert.")
    clv_column: Literal["clv_30d", "clv_90d", "clv_365d"] = Field(
        "clv_365d", description="The scores column that is the CLV."
    )
    service_queue: str = Field("vip", description="Queue of the one-to-one service tasks.")
    service_sla_hours: float | None = Field(
        None, gt=0, description="SLA of those tasks; None: 2 h for B2B, else 24 h."
    )
    # coupon cost (level 1)
    coupon_rise: float = Field(
        0.25, gt=0, description="Smallest relative rise of daily coupon cost that alerts."
    )
    # forecast (level 1)
    forecast_weeks: int = Field(
        9, ge=1, le=26, description="How far ahead the retention forecast looks (9 ≈ 2 months)."
    )
    forecast_history_weeks: int = Field(
        52, ge=12, le=260, description="Weeks of weekly retention the forecast is fitted on."
    )

    @field_validator("monitors")
    @classmethod
    def _monitors(cls, value: list[str]) -> list[str]:
        unknown = [m for m in value if m not in ALERT_MONITORS]
        if unknown:
            raise ValueError(
                f"alerts monitors: {', '.join(map(repr, unknown))} is not a monitor; "
                f"use some of {', '.join(ALERT_MONITORS)}"
            )
        return list(dict.fromkeys(value))

    @field_validator("owners", mode="before")
    @classmethod
    def _owners_lists(cls, value: object) -> object:
        if isinstance(value, dict):
            return {k: [v] if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("owners")
    @classmethod
    def _owners(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        return {k: _check_addresses(v, f"alerts owners {k}") for k, v in value.items()}

    @field_validator("weekly")
    @classmethod
    def _weekly(cls, value: list[str]) -> list[str]:
        return _check_addresses(value, "alerts weekly")


class TargetSettings(BaseModel):
    """Targets of the headline KPIs (``[targets]``): the cockpit colours a KPI green when
    it meets its target, yellow when it misses by at most ``tolerance`` (a share of the
    target), red beyond that; a KPI without a target stays grey. Churn rate is better
    lower; every other KPI is better higher. Rates are shares (0.25 = 25 %)."""

    model_config = {"extra": "forbid"}

    active_customers: float | None = Field(None, ge=0, description="Customers ordering in 90 days.")
    d1_retention: float | None = Field(None, ge=0, le=1, description="D1 activity retention.")
    d7_retention: float | None = Field(None, ge=0, le=1, description="D7 activity retention.")
    d30_retention: float | None = Field(None, ge=0, le=1, description="D30 activity retention.")
    repeat_30d: float | None = Field(
        None, ge=0, le=1, description="Repeat purchase within 30 days of the first order."
    )
    repeat_90d: float | None = Field(
        None, ge=0, le=1, description="Repeat purchase within 90 days of the first order."
    )
    repurchase_rate: float | None = Field(None, ge=0, le=1, description="Last 365 days.")
    churn_rate: float | None = Field(None, ge=0, le=1, description="At most this (lower wins).")
    aov: float | None = Field(None, ge=0, description="Average order value, main currency.")
    revenue: float | None = Field(None, ge=0, description="Revenue of the last 365 days.")
    arpu: float | None = Field(None, ge=0, description="Revenue per buyer, last 365 days.")
    ltv_cac: float | None = Field(None, ge=0, description="LTV/CAC over all channels.")
    weekly_retention: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Weekly retention: of the customers who ordered in the 90 days before "
        "a week, the share who order in it (docs/alerts.md); None: no forecast alert.",
    )
    tolerance: float = Field(
        0.1, ge=0, le=1, description="A miss by at most this share of the target is yellow."
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
    channels: dict[str, ChannelSettings] = Field(default_factory=dict)
    guards: GuardSettings = Field(default_factory=GuardSettings)
    journeys: JourneySettings = Field(default_factory=JourneySettings)
    serve: ServeSettings = Field(default_factory=ServeSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    targets: TargetSettings = Field(default_factory=TargetSettings)

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
