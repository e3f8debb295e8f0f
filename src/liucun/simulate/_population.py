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
    """Draw the users of one chunk, in the order of docs/simulator.md ("Customers",
    "Buying", "Messages", "Past campaign", "Duplicate registrations").

    Each step draws from ``rng`` in turn, so the order of the steps is part of the
    seeded output.
    """
    acc = _accounts_and_geography(preset, rng, first_user=first_user, n=n)
    off = np.array([g.utc_offset_hours for g in preset.geos])[acc.geo] / 24.0
    signup = _signup_times(preset, rng, cal, off, days=days)
    acq_names = np.array([a.name for a in preset.acquisition])[acc.acq]
    paid = np.isin(acq_names, ["paid_search", "social"])
    trait = _latent_behaviour(preset, rng, acc, paid)
    contact = _channels_and_messaging(preset, rng, acq_names)
    camp = _campaign(preset, rng, trait, acq_names, paid, signup, days=days)
    dup = _duplicate_registrations(preset, rng, acc, off, signup, trait, contact, camp, days=days)
    anon_raw = rng.integers(0, 256, (n, 16), dtype=np.uint8)
    anon_id = pc.if_else(
        pa.array(contact.has_device), hex_strings(anon_raw), pa.scalar(None, pa.string())
    )
    return Population(
        n=n,
        first_user=first_user,
        user_id=numbered("U", first_user + np.arange(n), ID_WIDTH),
        account_id=numbered("A", acc.account_no, ID_WIDTH, mask=acc.account_no < 0),
        person=dup.person,
        is_dup=dup.is_dup,
        dup_row=dup.dup_row,
        geo=acc.geo,
        off=off,
        acq=acc.acq,
        size=acc.size,
        industry=acc.industry,
        account=acc.account_no,
        signup=signup,
        never_buyer=trait.never_buyer,
        interest=trait.interest,
        lam=trait.lam,
        p=trait.p,
        nu=trait.nu,
        spend_mult=trait.spend_mult,
        late_prob=trait.late_prob,
        price_sens=trait.price_sens,
        sat=trait.sat,
        checkout=trait.checkout,
        primary=contact.primary,
        medium=contact.medium,
        opt_in=contact.opt_in,
        has_device=contact.has_device,
        anon_id=anon_id,
        effect=camp.effect,
        in_campaign=camp.in_campaign,
        treated=camp.treated,
        issue_t=camp.issue_t,
        currency=trait.currency,
        currencies=trait.currencies,
        is_first=acc.is_first,
    )


@dataclass
class _Accounts:
    """Who buys for whom and where: the B2B company (or none) and its geography."""

    geo: np.ndarray
    acq: np.ndarray
    size: np.ndarray
    industry: np.ndarray
    account_no: np.ndarray
    is_first: np.ndarray
    size_rate: np.ndarray  # purchase-rate multiplier of the company size (and account)
    size_spend: np.ndarray  # spend multiplier of the company size


def _accounts_and_geography(
    preset: Preset, rng: np.random.Generator, *, first_user: int, n: int
) -> _Accounts:
    """Accounts (B2B: several buyers share one company) and geography."""
    geos, acqs = preset.geos, preset.acquisition
    if preset.customer_type != "b2b":
        geo = _pick(rng, np.array([g.weight for g in geos]), n)
        acq = _pick(rng, np.array([a.weight for a in acqs]), n)
        return _Accounts(
            geo=geo,
            acq=acq,
            size=np.full(n, -1),
            industry=np.full(n, -1),
            account_no=np.full(n, -1),
            is_first=np.ones(n, dtype=bool),
            size_rate=np.ones(n),
            size_spend=np.ones(n),
        )
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
    return _Accounts(
        geo=acc_geo[account],
        acq=acc_acq[account],
        size=size,
        industry=acc_ind[account],
        account_no=first_user + first_member[account],
        is_first=np.arange(n) == first_member[account],
        size_rate=np.array([s.rate_mult for s in sizes])[size] * acc_mult[account],
        size_spend=np.array([s.spend_mult for s in sizes])[size],
    )


def _signup_times(
    preset: Preset, rng: np.random.Generator, cal: Calendar, off: np.ndarray, *, days: int
) -> np.ndarray:
    """Sign-up time (local days since the window start): some customers are older."""
    old = rng.random(off.size) < preset.pre_window_share
    lo = np.where(old, -float(preset.pre_window_days), 0.0) + off
    hi = np.where(old, 0.0, float(days)) + off
    return cal.sample(rng, lo, hi)


@dataclass
class _Traits:
    """Latent behaviour: BG/NBD + Gamma-Gamma parameters and the traits behind them."""

    sat: np.ndarray
    interest: np.ndarray
    p: np.ndarray
    never_buyer: np.ndarray
    lam: np.ndarray
    nu: np.ndarray
    currency: np.ndarray
    currencies: tuple[str, ...]
    spend_mult: np.ndarray
    late_prob: np.ndarray
    price_sens: np.ndarray
    checkout: np.ndarray


def _latent_behaviour(
    preset: Preset, rng: np.random.Generator, acc: _Accounts, paid: np.ndarray
) -> _Traits:
    """Latent behaviour (BG/NBD + Gamma-Gamma) shifted by covariates."""
    geos, acqs, geo, acq = preset.geos, preset.acquisition, acc.geo, acc.acq
    n = geo.size
    geo_rate = np.array([g.rate_mult for g in geos])[geo]
    acq_rate = np.array([a.rate_mult for a in acqs])[acq]
    acq_drop = np.array([a.dropout_mult for a in acqs])[acq]
    acq_never = np.array([a.never_buy_mult for a in acqs])
    acq_w = np.array([a.weight for a in acqs])
    acq_never = acq_never / (acq_never * acq_w).sum() * acq_w.sum()
    sat = rng.standard_normal(n)
    interest = rng.gamma(preset.r, 1.0 / preset.alpha, n) * geo_rate * acq_rate * acc.size_rate
    interest = np.minimum(interest, preset.max_rate)
    p = rng.beta(preset.a, preset.b, n) * acq_drop * np.exp(-0.25 * sat)
    p = np.clip(p, 0.005, 0.85)
    never_buyer = rng.random(n) < preset.never_buyer_share * acq_never[acq]
    nu = rng.gamma(preset.spend_q, 1.0 / preset.spend_gamma, n)
    currencies = tuple(sorted({g.currency for g in geos}))
    currency = np.searchsorted(np.array(currencies), np.array([g.currency for g in geos]))[geo]
    fx = np.array([FX_PER_USD[c] for c in currencies]) / FX_PER_USD[preset.base_currency]
    late_w = np.array([g.late_mult for g in geos])
    geo_w = np.array([g.weight for g in geos])
    late_norm = late_w / (late_w * geo_w).sum() * geo_w.sum()
    price_sens = np.clip(rng.beta(2.0, 4.0, n) + 0.1 * paid, 0.0, 1.0)
    checkout = ~never_buyer & (rng.random(n) < preset.checkout_signup_share)
    return _Traits(
        sat=sat,
        interest=interest,
        p=p,
        never_buyer=never_buyer,
        lam=np.where(never_buyer, 0.0, interest),
        nu=nu,
        currency=currency,
        currencies=currencies,
        spend_mult=np.array([a.spend_mult for a in acqs])[acq] * acc.size_spend * fx[currency],
        late_prob=np.clip(preset.late_share * late_norm[geo], 0.0, 0.6),
        price_sens=price_sens,
        checkout=checkout,
    )


@dataclass
class _Contact:
    """Favourite sales channel and how the shop reaches the customer."""

    primary: np.ndarray
    medium: np.ndarray
    opt_in: np.ndarray
    has_device: np.ndarray


def _channels_and_messaging(
    preset: Preset, rng: np.random.Generator, acq_names: np.ndarray
) -> _Contact:
    """Sales channel (offline-store sign-ups mostly buy in the store) and messaging."""
    n = acq_names.size
    ch_names = [c for c, _ in preset.sales_channels]
    primary = _pick(rng, np.array([w for _, w in preset.sales_channels]), n)
    if "offline_store" in ch_names:
        store = (acq_names == "offline_store") & (rng.random(n) < 0.6)
        primary = np.where(store, ch_names.index("offline_store"), primary)
    is_app = np.array([c == "app" for c in ch_names])[primary]
    medium = np.where(is_app & (rng.random(n) < 0.5), 1, np.where(rng.random(n) < 0.8, 0, 2))
    opt_in = rng.random(n) < 0.8
    has_device = rng.random(n) < 0.6
    return _Contact(primary=primary, medium=medium, opt_in=opt_in, has_device=has_device)


@dataclass
class _Campaign:
    """The past campaign: each customer's lift, coupon time and arm."""

    effect: np.ndarray
    issue_t: np.ndarray
    in_campaign: np.ndarray
    treated: np.ndarray


def _campaign(
    preset: Preset,
    rng: np.random.Generator,
    trait: _Traits,
    acq_names: np.ndarray,
    paid: np.ndarray,
    signup: np.ndarray,
    *,
    days: int,
) -> _Campaign:
    """Campaign: heterogeneous effect, some negative ("sleeping dogs"), 50/50 assignment."""
    n = signup.size
    heavy_organic = (acq_names == "organic") & (trait.interest > 2.0 * preset.r / preset.alpha)
    effect = 1.3 * (trait.price_sens - 0.3) + 0.25 * paid - 0.3 * heavy_organic
    effect = effect + 0.15 * rng.standard_normal(n)
    quiet = rng.random(n) < 0.4
    effect = np.where(quiet & ~heavy_organic, 0.03 * rng.standard_normal(n), effect)
    effect = np.clip(effect, -0.6, 2.5)
    c0 = float(days - CAMPAIGN_LEAD_DAYS)
    issue_t = c0 + (10.0 + rng.random(n)) / 24.0
    in_campaign = signup < issue_t
    treated = in_campaign & (rng.random(n) < 0.5)
    return _Campaign(effect=effect, issue_t=issue_t, in_campaign=in_campaign, treated=treated)


@dataclass
class _Duplicates:
    person: np.ndarray
    is_dup: np.ndarray
    dup_row: np.ndarray


def _duplicate_registrations(
    preset: Preset,
    rng: np.random.Generator,
    acc: _Accounts,
    off: np.ndarray,
    signup: np.ndarray,
    trait: _Traits,
    contact: _Contact,
    camp: _Campaign,
    *,
    days: int,
) -> _Duplicates:
    """Duplicate registrations: a second (loyalty-card) account of a customer.

    A duplicate row copies its person's covariates and latent parameters **in place**
    (the arrays of the other steps are updated), signs up later, in the offline store.
    """
    n = signup.size
    n_dup = min(int(rng.binomial(n, preset.duplicate_share)), n // 2)
    dup_rows = np.sort(rng.choice(n, n_dup, replace=False)) if n_dup else np.array([], int)
    free = np.setdiff1d(np.arange(n), dup_rows)
    originals = rng.choice(free, n_dup, replace=False) if n_dup else np.array([], int)
    person = np.arange(n)
    person[dup_rows] = originals
    dup_row = np.full(n, -1)
    dup_row[originals] = dup_rows
    end_local = days + off
    dup_signup = signup[originals] + rng.random(n_dup) * (end_local[originals] - signup[originals])
    copy = [acc.geo, off, acc.size, acc.industry, acc.account_no, trait.never_buyer]
    copy += [trait.interest, trait.lam, trait.p, trait.nu, trait.spend_mult, trait.late_prob]
    copy += [trait.price_sens, trait.sat, camp.effect, camp.issue_t, camp.in_campaign]
    copy += [camp.treated, trait.currency]
    for arr in copy:
        arr[dup_rows] = arr[originals]
    if "offline_store" in (names := [a.name for a in preset.acquisition]):
        acc.acq[dup_rows] = names.index("offline_store")
    signup[dup_rows] = dup_signup
    trait.checkout[dup_rows] = False
    acc.is_first[dup_rows] = False
    ch_names = [c for c, _ in preset.sales_channels]
    if "offline_store" in ch_names:
        contact.primary[dup_rows] = ch_names.index("offline_store")
    contact.has_device[dup_rows] = False
    return _Duplicates(person=person, is_dup=person != np.arange(n), dup_row=dup_row)


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
