"""Shop presets: the parameters of each simulated platform (b2c, b2b, crossborder).

A preset is plain data. The engine reads it; nothing here draws random numbers.
Money amounts (spend, acquisition cost) are in the preset's ``base_currency``; orders
are converted to each customer's currency with :data:`FX_PER_USD`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class Geo:
    """One place customers live: country, sales region, time zone and money.

    ``utc_offset_hours`` is the zone's standard offset (daylight saving is ignored).
    ``rate_mult`` scales the purchase rate, ``late_mult`` the chance of a late delivery.
    """

    country: str
    region: str
    timezone: str
    utc_offset_hours: float
    language: str
    currency: str
    weight: float
    rate_mult: float = 1.0
    late_mult: float = 1.0


@dataclass(frozen=True)
class Acquisition:
    """An acquisition channel: its share of sign-ups, cost and effect on behaviour."""

    name: str
    weight: float
    cac: float
    rate_mult: float
    dropout_mult: float
    never_buy_mult: float
    spend_mult: float = 1.0


@dataclass(frozen=True)
class CompanySize:
    """A B2B company size band: share of accounts, extra buyers and behaviour shifts."""

    band: str
    weight: float
    mean_extra_buyers: float
    rate_mult: float
    spend_mult: float


@dataclass(frozen=True)
class Preset:
    """Every parameter of one simulated shop.

    Latent behaviour follows BG/NBD + Gamma-Gamma: purchase rate λ ~ Gamma(r, α) per
    day, dropout after each order p ~ Beta(a, b), order value ~ Gamma(p, ν) with
    ν ~ Gamma(q, γ). Covariates (geo, acquisition channel, company size) multiply them.
    """

    name: str
    description: str
    customer_type: str
    base_currency: str
    geos: tuple[Geo, ...]
    acquisition: tuple[Acquisition, ...]
    sales_channels: tuple[tuple[str, float], ...]
    categories: tuple[str, ...]
    # BG/NBD + Gamma-Gamma
    r: float
    alpha: float
    a: float
    b: float
    spend_p: float
    spend_q: float
    spend_gamma: float
    max_rate: float
    # population
    never_buyer_share: float
    checkout_signup_share: float
    pre_window_share: float
    pre_window_days: int
    duplicate_share: float
    # calendar (local time)
    weekday_factors: tuple[float, float, float, float, float, float, float]
    hour_profile: tuple[float, ...]
    sale_days: tuple[tuple[int, int, float], ...]
    black_friday_mult: float
    # service
    late_share: float
    late_dropout_mult: float
    slow_ticket_dropout_mult: float
    promised_days: tuple[int, int]
    # engagement
    browse_per_order: float
    message_interval_days: int
    items_per_order: float
    # b2b
    company_sizes: tuple[CompanySize, ...] = ()
    industries: tuple[str, ...] = ()
    # seasonal buyers: share of buying customers who buy once a year around their own day
    # of the year instead of as a Poisson process (liucun.simulate._seasonal); 0 = none
    seasonal_share: float = 0.0


#: Units of each currency per US dollar (rounded reference rates; simulation only).
FX_PER_USD: Mapping[str, float] = MappingProxyType(
    {
        "USD": 1.0,
        "EUR": 0.92,
        "GBP": 0.79,
        "JPY": 150.0,
        "KRW": 1350.0,
        "CNY": 7.2,
        "AUD": 1.52,
        "CAD": 1.36,
        "BRL": 5.0,
        "MXN": 17.0,
        "SGD": 1.34,
        "AED": 3.67,
        "SAR": 3.75,
        "PLN": 4.0,
        "SEK": 10.5,
    }
)

#: Currencies without minor units (amounts are whole numbers).
ZERO_DECIMAL_CURRENCIES: frozenset[str] = frozenset({"JPY", "KRW"})

_CONSUMER_HOURS = (
    0.5, 0.3, 0.2, 0.15, 0.15, 0.2, 0.4, 0.7, 0.9, 1.0, 1.1, 1.2,
    1.4, 1.3, 1.1, 1.0, 1.0, 1.1, 1.3, 1.6, 1.9, 2.0, 1.7, 1.0,
)  # fmt: skip
_BUSINESS_HOURS = (
    0.05, 0.05, 0.05, 0.05, 0.05, 0.1, 0.3, 0.8, 1.8, 2.4, 2.5, 2.2,
    1.4, 2.0, 2.4, 2.3, 2.0, 1.4, 0.7, 0.4, 0.3, 0.2, 0.1, 0.05,
)  # fmt: skip

_CN = "Asia/Shanghai"
_CN_GEOS = (
    Geo("CN", "east", _CN, 8, "zh-CN", "CNY", 0.34, rate_mult=1.15, late_mult=0.8),
    Geo("CN", "south", _CN, 8, "zh-CN", "CNY", 0.22, rate_mult=1.1, late_mult=0.85),
    Geo("CN", "north", _CN, 8, "zh-CN", "CNY", 0.18, rate_mult=1.0, late_mult=1.0),
    Geo("CN", "central", _CN, 8, "zh-CN", "CNY", 0.12, rate_mult=0.9, late_mult=1.2),
    Geo("CN", "southwest", _CN, 8, "zh-CN", "CNY", 0.08, rate_mult=0.85, late_mult=1.6),
    Geo("CN", "northwest", _CN, 8, "zh-CN", "CNY", 0.03, rate_mult=0.8, late_mult=2.0),
    Geo("CN", "northeast", _CN, 8, "zh-CN", "CNY", 0.03, rate_mult=0.85, late_mult=1.5),
)

B2C = Preset(
    name="b2c",
    description="A consumer shop in China: app, web, mini program, stores and marketplaces.",
    customer_type="b2c",
    base_currency="CNY",
    geos=_CN_GEOS,
    acquisition=(
        Acquisition("organic", 0.34, 0.0, 1.25, 0.85, 0.85),
        Acquisition("paid_search", 0.22, 65.0, 0.9, 1.15, 1.05, 1.05),
        Acquisition("social", 0.20, 40.0, 0.75, 1.35, 1.3, 0.9),
        Acquisition("referral", 0.12, 25.0, 1.1, 0.8, 0.85, 1.0),
        Acquisition("offline_store", 0.12, 15.0, 1.0, 0.95, 0.9, 1.15),
    ),
    sales_channels=(
        ("app", 0.38),
        ("mini_program", 0.22),
        ("web", 0.15),
        ("marketplace", 0.15),
        ("offline_store", 0.10),
    ),
    categories=("apparel", "beauty", "electronics", "home", "food", "baby", "sports", "books"),
    r=0.9,
    alpha=75.0,
    a=0.9,
    b=2.8,
    spend_p=4.0,
    spend_q=5.0,
    spend_gamma=200.0,
    max_rate=0.5,
    never_buyer_share=0.28,
    checkout_signup_share=0.45,
    pre_window_share=0.35,
    pre_window_days=730,
    duplicate_share=0.02,
    weekday_factors=(0.95, 0.92, 0.92, 0.95, 1.0, 1.3, 1.25),
    hour_profile=_CONSUMER_HOURS,
    sale_days=(
        (6, 16, 1.5),
        (6, 17, 1.8),
        (6, 18, 4.0),
        (11, 9, 1.5),
        (11, 10, 1.8),
        (11, 11, 5.0),
    ),
    black_friday_mult=1.0,
    late_share=0.12,
    late_dropout_mult=2.0,
    slow_ticket_dropout_mult=1.6,
    promised_days=(2, 4),
    browse_per_order=1.5,
    message_interval_days=14,
    items_per_order=0.8,
)

B2B = Preset(
    name="b2b",
    description="A wholesale marketplace: company accounts with several buyers, large orders.",
    customer_type="b2b",
    base_currency="CNY",
    geos=_CN_GEOS,
    acquisition=(
        Acquisition("organic", 0.30, 0.0, 1.2, 0.85, 0.85),
        Acquisition("paid_search", 0.25, 400.0, 0.9, 1.15, 1.05),
        Acquisition("referral", 0.15, 150.0, 1.15, 0.75, 0.8, 1.1),
        Acquisition("offline_store", 0.20, 250.0, 1.05, 0.9, 0.9, 1.2),
        Acquisition("social", 0.10, 200.0, 0.8, 1.3, 1.25, 0.85),
    ),
    sales_channels=(("web", 0.55), ("offline_store", 0.25), ("app", 0.12), ("marketplace", 0.08)),
    categories=(
        "office_supplies",
        "packaging",
        "food_service",
        "cleaning",
        "electronics",
        "industrial",
        "furniture",
    ),
    r=1.3,
    alpha=190.0,
    a=0.8,
    b=4.0,
    spend_p=3.0,
    spend_q=4.0,
    spend_gamma=3000.0,
    max_rate=0.3,
    never_buyer_share=0.27,
    checkout_signup_share=0.25,
    pre_window_share=0.45,
    pre_window_days=1095,
    duplicate_share=0.02,
    weekday_factors=(1.25, 1.3, 1.3, 1.25, 1.2, 0.4, 0.3),
    hour_profile=_BUSINESS_HOURS,
    sale_days=((6, 18, 1.5), (11, 11, 1.8)),
    black_friday_mult=1.0,
    late_share=0.12,
    late_dropout_mult=1.8,
    slow_ticket_dropout_mult=1.8,
    promised_days=(3, 7),
    browse_per_order=1.2,
    message_interval_days=14,
    items_per_order=6.0,
    company_sizes=(
        CompanySize("1-9", 0.50, 0.6, 1.0, 1.0),
        CompanySize("10-49", 0.30, 1.6, 1.2, 2.0),
        CompanySize("50-249", 0.15, 3.0, 1.5, 4.0),
        CompanySize("250+", 0.05, 6.0, 2.0, 8.0),
    ),
    industries=(
        "retail",
        "hospitality",
        "manufacturing",
        "healthcare",
        "education",
        "construction",
        "technology",
        "logistics",
    ),
)

_XB_GEOS = (
    Geo("US", "north_america", "America/New_York", -5, "en-US", "USD", 0.10, 1.1, 1.0),
    Geo("US", "north_america", "America/Chicago", -6, "en-US", "USD", 0.05, 1.1, 1.0),
    Geo("US", "north_america", "America/Los_Angeles", -8, "en-US", "USD", 0.07, 1.1, 1.0),
    Geo("CA", "north_america", "America/Toronto", -5, "en-CA", "CAD", 0.04, 1.0, 1.2),
    Geo("MX", "latin_america", "America/Mexico_City", -6, "es-MX", "MXN", 0.04, 0.8, 1.8),
    Geo("BR", "latin_america", "America/Sao_Paulo", -3, "pt-BR", "BRL", 0.05, 0.8, 2.2),
    Geo("GB", "europe", "Europe/London", 0, "en-GB", "GBP", 0.08, 1.05, 0.9),
    Geo("DE", "europe", "Europe/Berlin", 1, "de-DE", "EUR", 0.08, 1.0, 0.8),
    Geo("FR", "europe", "Europe/Paris", 1, "fr-FR", "EUR", 0.07, 1.0, 0.9),
    Geo("ES", "europe", "Europe/Madrid", 1, "es-ES", "EUR", 0.05, 0.95, 1.0),
    Geo("IT", "europe", "Europe/Rome", 1, "it-IT", "EUR", 0.04, 0.95, 1.1),
    Geo("NL", "europe", "Europe/Amsterdam", 1, "nl-NL", "EUR", 0.03, 1.05, 0.8),
    Geo("PL", "europe", "Europe/Warsaw", 1, "pl-PL", "PLN", 0.03, 0.9, 1.1),
    Geo("SE", "europe", "Europe/Stockholm", 1, "sv-SE", "SEK", 0.02, 1.0, 0.9),
    Geo("JP", "asia_pacific", "Asia/Tokyo", 9, "ja-JP", "JPY", 0.06, 1.05, 0.6),
    Geo("KR", "asia_pacific", "Asia/Seoul", 9, "ko-KR", "KRW", 0.05, 1.1, 0.6),
    Geo("AU", "asia_pacific", "Australia/Sydney", 10, "en-AU", "AUD", 0.04, 1.0, 1.3),
    Geo("SG", "asia_pacific", "Asia/Singapore", 8, "en-SG", "SGD", 0.03, 1.1, 0.7),
    Geo("AE", "middle_east", "Asia/Dubai", 4, "ar-AE", "AED", 0.04, 1.1, 1.2),
    Geo("SA", "middle_east", "Asia/Riyadh", 3, "ar-SA", "SAR", 0.04, 1.0, 1.4),
)

CROSSBORDER = Preset(
    name="crossborder",
    description="A cross-border store shipping worldwide, priced in each customer's currency.",
    customer_type="b2c",
    base_currency="USD",
    geos=_XB_GEOS,
    acquisition=(
        Acquisition("organic", 0.22, 0.0, 1.25, 0.85, 0.85),
        Acquisition("paid_search", 0.32, 14.0, 0.9, 1.1, 1.0, 1.05),
        Acquisition("social", 0.30, 9.0, 0.75, 1.35, 1.3, 0.9),
        Acquisition("referral", 0.12, 5.0, 1.1, 0.8, 0.85, 1.0),
        Acquisition("offline_store", 0.04, 6.0, 1.0, 0.95, 0.9, 1.1),
    ),
    sales_channels=(("web", 0.45), ("app", 0.35), ("marketplace", 0.18), ("offline_store", 0.02)),
    categories=("apparel", "electronics", "beauty", "home", "toys", "sports", "jewelry"),
    r=0.8,
    alpha=95.0,
    a=0.9,
    b=2.5,
    spend_p=4.0,
    spend_q=5.0,
    spend_gamma=60.0,
    max_rate=0.4,
    never_buyer_share=0.30,
    checkout_signup_share=0.5,
    pre_window_share=0.3,
    pre_window_days=730,
    duplicate_share=0.02,
    weekday_factors=(0.98, 0.95, 0.95, 0.97, 1.0, 1.2, 1.2),
    hour_profile=_CONSUMER_HOURS,
    sale_days=((6, 18, 1.5), (11, 11, 3.0)),
    black_friday_mult=3.5,
    late_share=0.14,
    late_dropout_mult=2.2,
    slow_ticket_dropout_mult=1.6,
    promised_days=(7, 14),
    browse_per_order=1.5,
    message_interval_days=14,
    items_per_order=0.6,
)

#: The shops :func:`~liucun.simulate.simulate_shop` can simulate, by name.
PRESETS: Mapping[str, Preset] = MappingProxyType({p.name: p for p in (B2C, B2B, CROSSBORDER)})
