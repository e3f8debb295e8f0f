"""Who the customers are: covariates, latent behaviour and identities of one chunk.

Every array in :class:`Population` has one entry per user row of the chunk. A
*duplicate registration* is a second account of another customer of the same chunk (an
offline-store loyalty-card account): its row copies the person's covariates and latent
parameters, and ``person`` points at the original row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from liucun.schema import arrow_schema
from liucun.simulate._calendar import Calendar
from liucun.simulate._presets import FX_PER_USD, Preset
from liucun.simulate._strings import choose, hex_strings, json_object, numbered, quoted

TS = arrow_schema("events").field("ts").type

ID_WIDTH = 8

#: Columns of ``users.parquet``: the canonical ones minus what ingest adds, plus identity.
USER_SCHEMA = pa.schema(
    [f for f in arrow_schema("users") if f.name not in ("ingested_at", "load_id")]
    + [pa.field("email_hash", pa.string()), pa.field("loyalty_card", pa.string())]
)
DEVICES = ("ios", "android", "desktop", "mobile_web", "wechat")
MEDIA = ("email", "push", "sms")
#: Campaign starts this many days before the end of the window.
CAMPAIGN_LEAD_DAYS = 90
CAMPAIGN_DAYS = 30


def campaign_names(start_date: np.datetime64, days: int) -> tuple[str, str]:
    """The campaign's id and coupon code, named after its start date."""
    day = str(start_date + np.timedelta64(days - CAMPAIGN_LEAD_DAYS, "D")).replace("-", "")
    return f"cmp-{day}-coupon", f"CMP{day}"


@dataclass
class Population:
    """Covariates and latent parameters of one chunk (arrays of length ``n``)."""

    n: int
    first_user: int
    user_id: pa.Array
    account_id: pa.Array
    person: np.ndarray
    is_dup: np.ndarray
    dup_row: np.ndarray
    geo: np.ndarray
    off: np.ndarray  # UTC offset in days
    acq: np.ndarray
    size: np.ndarray
    industry: np.ndarray
    account: np.ndarray
    signup: np.ndarray  # local days since window start
    never_buyer: np.ndarray
    interest: np.ndarray  # latent λ, also for never-buyers (drives browsing)
    lam: np.ndarray  # purchase rate per day (0 for never-buyers)
    p: np.ndarray
    nu: np.ndarray  # Gamma-Gamma ν in base-currency units
    spend_mult: np.ndarray  # covariate shift × FX into the customer's currency
    late_prob: np.ndarray
    price_sens: np.ndarray
    sat: np.ndarray
    checkout: np.ndarray
    primary: np.ndarray
    medium: np.ndarray
    opt_in: np.ndarray
    has_device: np.ndarray
    anon_id: pa.Array
    effect: np.ndarray  # campaign multiplies the rate by (1 + effect)
    in_campaign: np.ndarray
    treated: np.ndarray
    issue_t: np.ndarray  # local time of the campaign coupon
    currency: np.ndarray  # index into ``currencies``
    currencies: tuple[str, ...]
    is_first: np.ndarray  # first buyer of the account (carries the acquisition cost)

    @property
    def kappa(self) -> np.ndarray:
        """Campaign boost actually applied (0 for control and non-campaign users)."""
        return np.where(self.treated, self.effect, 0.0)


def _pick(rng: np.random.Generator, weights: np.ndarray, n: int) -> np.ndarray:
    cdf = np.cumsum(weights / weights.sum())
    return np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), weights.size - 1)


def make_population(
    preset: Preset,
    rng: np.random.Generator,
    cal: Calendar,
    *,
    first_user: int,
    n: int,
    days: int,
) -> Population:
    """Draw the users of one chunk."""
    geos = preset.geos
    acqs = preset.acquisition
    b2b = preset.customer_type == "b2b"

    # accounts (B2B: several buyers share one company) and geography
    if b2b:
        sizes = preset.company_sizes
        acc_size = _pick(rng, np.array([s.weight for s in sizes]), n)
        extra = np.array([s.mean_extra_buyers for s in sizes])[acc_size]
        members = 1 + rng.poisson(extra)
        k = int(np.searchsorted(np.cumsum(members), n)) + 1
        account = np.repeat(np.arange(k), members[:k])[:n]
        first_member = np.searchsorted(account, np.arange(k))
        acc_geo = _pick(rng, np.array([g.weight for g in geos]), k)
        acc_ind = rng.integers(0, len(preset.industries), k)
        acc_acq = _pick(rng, np.array([a.weight for a in acqs]), k)
        acc_mult = rng.gamma(4.0, 0.25, k)
        size = acc_size[account]
        industry = acc_ind[account]
        geo = acc_geo[account]
        acq = acc_acq[account]
        size_rate = np.array([s.rate_mult for s in sizes])[size] * acc_mult[account]
        size_spend = np.array([s.spend_mult for s in sizes])[size]
        account_no = first_user + first_member[account]
        is_first = np.arange(n) == first_member[account]
    else:
        geo = _pick(rng, np.array([g.weight for g in geos]), n)
        acq = _pick(rng, np.array([a.weight for a in acqs]), n)
        size, industry, account_no = np.full(n, -1), np.full(n, -1), np.full(n, -1)
        size_rate, size_spend = np.ones(n), np.ones(n)
        is_first = np.ones(n, dtype=bool)
    off = np.array([g.utc_offset_hours for g in geos])[geo] / 24.0

    # sign-up time: some customers are older than the window
    old = rng.random(n) < preset.pre_window_share
    lo = np.where(old, -float(preset.pre_window_days), 0.0) + off
    hi = np.where(old, 0.0, float(days)) + off
    signup = cal.sample(rng, lo, hi)

    # latent behaviour (BG/NBD + Gamma-Gamma) shifted by covariates
    geo_rate = np.array([g.rate_mult for g in geos])[geo]
    acq_rate = np.array([a.rate_mult for a in acqs])[acq]
    acq_drop = np.array([a.dropout_mult for a in acqs])[acq]
    acq_never = np.array([a.never_buy_mult for a in acqs])
    acq_w = np.array([a.weight for a in acqs])
    acq_never = acq_never / (acq_never * acq_w).sum() * acq_w.sum()
    sat = rng.standard_normal(n)
    interest = rng.gamma(preset.r, 1.0 / preset.alpha, n) * geo_rate * acq_rate * size_rate
    interest = np.minimum(interest, preset.max_rate)
    p = rng.beta(preset.a, preset.b, n) * acq_drop * np.exp(-0.25 * sat)
    p = np.clip(p, 0.005, 0.85)
    never_buyer = rng.random(n) < preset.never_buyer_share * acq_never[acq]
    lam = np.where(never_buyer, 0.0, interest)
    nu = rng.gamma(preset.spend_q, 1.0 / preset.spend_gamma, n)
    currencies = tuple(sorted({g.currency for g in geos}))
    currency = np.searchsorted(np.array(currencies), np.array([g.currency for g in geos]))[geo]
    fx = np.array([FX_PER_USD[c] for c in currencies]) / FX_PER_USD[preset.base_currency]
    spend_mult = np.array([a.spend_mult for a in acqs])[acq] * size_spend * fx[currency]
    late_w = np.array([g.late_mult for g in geos])
    geo_w = np.array([g.weight for g in geos])
    late_norm = late_w / (late_w * geo_w).sum() * geo_w.sum()
    late_prob = np.clip(preset.late_share * late_norm[geo], 0.0, 0.6)
    acq_names = np.array([a.name for a in acqs])[acq]
    paid = np.isin(acq_names, ["paid_search", "social"])
    price_sens = np.clip(rng.beta(2.0, 4.0, n) + 0.1 * paid, 0.0, 1.0)
    checkout = ~never_buyer & (rng.random(n) < preset.checkout_signup_share)

    # sales channel, messaging
    ch_names = [c for c, _ in preset.sales_channels]
    primary = _pick(rng, np.array([w for _, w in preset.sales_channels]), n)
    if "offline_store" in ch_names:
        store = (acq_names == "offline_store") & (rng.random(n) < 0.6)
        primary = np.where(store, ch_names.index("offline_store"), primary)
    is_app = np.array([c == "app" for c in ch_names])[primary]
    medium = np.where(is_app & (rng.random(n) < 0.5), 1, np.where(rng.random(n) < 0.8, 0, 2))
    opt_in = rng.random(n) < 0.8
    has_device = rng.random(n) < 0.6

    # campaign: heterogeneous effect, some negative ("sleeping dogs")
    heavy_organic = (acq_names == "organic") & (interest > 2.0 * preset.r / preset.alpha)
    effect = 1.3 * (price_sens - 0.3) + 0.25 * paid - 0.3 * heavy_organic
    effect = effect + 0.15 * rng.standard_normal(n)
    quiet = rng.random(n) < 0.4
    effect = np.where(quiet & ~heavy_organic, 0.03 * rng.standard_normal(n), effect)
    effect = np.clip(effect, -0.6, 2.5)
    c0 = float(days - CAMPAIGN_LEAD_DAYS)
    issue_t = c0 + (10.0 + rng.random(n)) / 24.0
    in_campaign = signup < issue_t
    treated = in_campaign & (rng.random(n) < 0.5)

    # duplicate registrations: a second (loyalty-card) account of a customer
    n_dup = min(int(rng.binomial(n, preset.duplicate_share)), n // 2)
    dup_rows = np.sort(rng.choice(n, n_dup, replace=False)) if n_dup else np.array([], int)
    free = np.setdiff1d(np.arange(n), dup_rows)
    originals = rng.choice(free, n_dup, replace=False) if n_dup else np.array([], int)
    person = np.arange(n)
    person[dup_rows] = originals
    is_dup = person != np.arange(n)
    dup_row = np.full(n, -1)
    dup_row[originals] = dup_rows
    end_local = days + off
    dup_signup = signup[originals] + rng.random(n_dup) * (end_local[originals] - signup[originals])
    copy = [geo, off, size, industry, account_no, never_buyer, interest, lam, p, nu]
    copy += [spend_mult, late_prob, price_sens, sat, effect, issue_t, in_campaign, treated]
    for arr in [*copy, currency]:
        arr[dup_rows] = arr[originals]
    if "offline_store" in (names := [a.name for a in acqs]):
        acq[dup_rows] = names.index("offline_store")
    signup[dup_rows] = dup_signup
    checkout[dup_rows] = False
    is_first[dup_rows] = False
    if "offline_store" in ch_names:
        primary[dup_rows] = ch_names.index("offline_store")
    has_device[dup_rows] = False

    # identities
    idx = first_user + np.arange(n)
    user_id = numbered("U", idx, ID_WIDTH)
    anon_raw = rng.integers(0, 256, (n, 16), dtype=np.uint8)
    anon_id = pc.if_else(pa.array(has_device), hex_strings(anon_raw), pa.scalar(None, pa.string()))

    pop = Population(
        n=n,
        first_user=first_user,
        user_id=user_id,
        account_id=numbered("A", account_no, ID_WIDTH, mask=account_no < 0),
        person=person,
        is_dup=is_dup,
        dup_row=dup_row,
        geo=geo,
        off=off,
        acq=acq,
        size=size,
        industry=industry,
        account=account_no,
        signup=signup,
        never_buyer=never_buyer,
        interest=interest,
        lam=lam,
        p=p,
        nu=nu,
        spend_mult=spend_mult,
        late_prob=late_prob,
        price_sens=price_sens,
        sat=sat,
        checkout=checkout,
        primary=primary,
        medium=medium,
        opt_in=opt_in,
        has_device=has_device,
        anon_id=anon_id,
        effect=effect,
        in_campaign=in_campaign,
        treated=treated,
        issue_t=issue_t,
        currency=currency,
        currencies=currencies,
        is_first=is_first,
    )
    return pop


def users_table(
    pop: Population, preset: Preset, rng: np.random.Generator, *, start_us: int, days: int
) -> pa.Table:
    """The ``users`` rows of the chunk (canonical columns plus identity columns)."""
    n = pop.n
    geos = preset.geos
    signup_us = start_us + np.round((pop.signup - pop.off) * 86_400e6).astype(np.int64)
    end_us = start_us + days * 86_400_000_000
    signup_us = np.minimum(signup_us, end_us - 1)

    cac = np.array([a.cac for a in preset.acquisition])[pop.acq]
    cac = np.round(cac * rng.lognormal(0.0, 0.35, n) * pop.is_first * ~pop.is_dup, 2)
    age_years = np.minimum(18.0 + rng.gamma(3.0, 6.0, n), 85.0)
    end_day = start_us // 86_400_000_000 + days
    bday = (end_day - age_years * 365.25 - rng.random(n) * 365.0).astype(np.int32)
    no_bday = rng.random(n) < (0.7 if preset.customer_type == "b2b" else 0.08)
    bday[pop.is_dup] = bday[pop.person[pop.is_dup]]
    no_bday[pop.is_dup] = no_bday[pop.person[pop.is_dup]]

    ch_names = [c for c, _ in preset.sales_channels]
    device_of_channel = {
        "app": (0, 1),
        "mini_program": (4, 4),
        "web": (2, 3),
        "marketplace": (0, 1),
        "offline_store": (-1, -1),
    }
    dev_pair = np.array([device_of_channel[c] for c in ch_names])[pop.primary]
    device = np.where(rng.random(n) < 0.5, dev_pair[:, 0], dev_pair[:, 1])
    attrs = json_object(
        [
            ("marketing_opt_in", pc.if_else(pa.array(pop.opt_in), "true", "false")),
            ("device", quoted(choose(DEVICES, device))),
            ("currency", quoted(choose(pop.currencies, pop.currency))),
        ],
        n,
    )
    email = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    email[pop.is_dup] = email[pop.person[pop.is_dup]]
    offline = np.array([a.name == "offline_store" for a in preset.acquisition])[pop.acq]
    card = pop.is_dup | (rng.random(n) < np.where(offline, 0.7, 0.1))
    card_no = numbered("LC", rng.integers(0, 10**10, n), 10)
    return pa.table(
        {
            "user_id": pop.user_id,
            "signup_ts": pa.array(signup_us, type=TS),
            "customer_type": pa.array([preset.customer_type] * n, type=pa.string()),
            "account_id": pop.account_id,
            "company_size": choose([s.band for s in preset.company_sizes], pop.size),
            "industry": choose(preset.industries, pop.industry),
            "country": choose([g.country for g in geos], pop.geo),
            "region": choose([g.region for g in geos], pop.geo),
            "language": choose([g.language for g in geos], pop.geo),
            "timezone": choose([g.timezone for g in geos], pop.geo),
            "acquisition_channel": choose([a.name for a in preset.acquisition], pop.acq),
            "acquisition_cost": pa.array(cac, type=pa.float64()),
            "birthday": pa.array(bday, type=pa.int32(), mask=no_bday).cast(pa.date32()),
            "attributes": attrs,
            "email_hash": hex_strings(email),
            "loyalty_card": pc.if_else(pa.array(card), card_no, pa.scalar(None, pa.string())),
        },
        schema=USER_SCHEMA,
    )
