"""The simulated shops show the behaviour the simulator claims, in numbers."""

from __future__ import annotations

import datetime as dt
import itertools
import re
import zoneinfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from liucun.simulate import PRESETS

US_PER_DAY = 86_400_000_000
CN_OFFSET_US = 8 * 3_600_000_000


def _np(table: pa.Table, column: str) -> np.ndarray:
    """A column as numpy; text becomes fixed-width unicode so sorting and isin run in C."""
    values = table[column].to_numpy(zero_copy_only=False)
    return values.astype(str) if pa.types.is_string(table[column].type) else values


def _prop(table: pa.Table, key: str) -> pa.Array:
    """A top-level value of the JSON ``properties`` (as text; quotes stripped)."""
    pattern = rf'"{key}":"?(?P<v>[^",}}]*)'
    found = pc.extract_regex(table["properties"].combine_chunks(), pattern)
    return pc.struct_field(found, [0])


def _local_day(table: pa.Table, offset_us: int) -> np.ndarray:
    return (_np(table.select(["ts"]).cast(pa.schema([("ts", pa.int64())])), "ts") + offset_us) // (
        US_PER_DAY
    )


def _lookup(keys: np.ndarray, values: np.ndarray, query: np.ndarray, missing: object) -> np.ndarray:
    """Vectorised ``dict(zip(keys, values)).get(q, missing)`` for every ``q``."""
    order = np.argsort(keys)
    pos = np.clip(np.searchsorted(keys[order], query), 0, max(keys.size - 1, 0))
    found = keys.size > 0 and keys[order][pos] == query
    return np.where(found, values[order][pos], missing)


def _ts(table: pa.Table, column: str = "ts") -> np.ndarray:
    """Timestamps as int64 microseconds (nulls as -1)."""
    return pc.fill_null(table[column].cast(pa.int64()), -1).to_numpy()


def _orders_per_user(shop) -> np.ndarray:
    orders = shop.of_type("order")
    ids, counts = np.unique(_np(orders, "user_id"), return_counts=True)
    per_user = dict(zip(ids, counts, strict=True))
    return np.array([per_user.get(u, 0) for u in _np(shop.users, "user_id")])


# --- basic guarantees -----------------------------------------------------------------


def test_no_event_outside_the_window_and_ids_unique(b2c) -> None:
    res = b2c.result
    start_us = (res.start - dt.date(1970, 1, 1)).days * US_PER_DAY
    end_us = (res.end - dt.date(1970, 1, 1)).days * US_PER_DAY
    ts = b2c.events["ts"].cast(pa.int64()).to_numpy()
    assert start_us <= ts.min() and ts.max() < end_us
    assert ts.max() > end_us - US_PER_DAY  # the window is used up to its end
    assert pc.count_distinct(b2c.events["event_id"]).as_py() == b2c.events.num_rows
    assert b2c.result.n_events > 25 * 30_000


def test_revenue_is_non_negative_and_refunds_never_exceed_their_order(b2c) -> None:
    orders, refunds = b2c.of_type("order"), b2c.of_type("refund")
    assert pc.min(orders["revenue"]).as_py() > 0
    assert 0.01 < refunds.num_rows / orders.num_rows < 0.08
    paid = dict(zip(_np(orders, "order_id"), _np(orders, "revenue"), strict=True))
    refund_ids = _np(refunds, "order_id")
    assert all(oid in paid for oid in refund_ids)
    order_revenue = np.array([paid[o] for o in refund_ids])
    assert np.all(_np(refunds, "revenue") <= order_revenue)
    assert np.all(_np(refunds, "revenue") > 0)
    assert set(_np(orders, "currency")) == {"CNY"}


# --- heterogeneity ----------------------------------------------------------------------


def test_order_counts_are_overdispersed_versus_poisson(b2c) -> None:
    counts = _orders_per_user(b2c)
    assert counts.var() / counts.mean() > 2.5


def test_never_buyer_share_is_in_range_and_they_never_order(b2c) -> None:
    never = _np(b2c.truth, "never_buyer")
    assert 0.25 <= never.mean() <= 0.35
    counts = _orders_per_user(b2c)
    assert counts[never].sum() == 0
    assert (counts == 0).mean() > never.mean()


def test_acquisition_channels_shift_the_purchase_rate(b2c) -> None:
    channel = _np(b2c.users, "acquisition_channel")
    rate = _np(b2c.truth, "purchase_rate")
    buyer = ~_np(b2c.truth, "never_buyer")
    mean = {c: rate[(channel == c) & buyer].mean() for c in np.unique(channel)}
    assert set(mean) == {"organic", "paid_search", "social", "referral", "offline_store"}
    assert mean["organic"] > 1.5 * mean["social"]
    counts = _orders_per_user(b2c)
    assert counts[channel == "organic"].mean() > 1.5 * counts[channel == "social"].mean()
    cost = _np(b2c.users, "acquisition_cost")
    assert np.all(cost[channel == "organic"] == 0)
    assert cost[channel == "paid_search"].mean() > cost[channel == "social"].mean() > 0


# --- calendar ---------------------------------------------------------------------------


def _orders_by_local_day(b2c) -> tuple[np.ndarray, np.ndarray]:
    day = _local_day(b2c.of_type("order"), CN_OFFSET_US)
    days, counts = np.unique(day, return_counts=True)
    return days, counts


def test_sale_days_spike_order_volume(b2c) -> None:
    days, counts = _orders_by_local_day(b2c)
    median = np.median(counts)
    for sale_day in (dt.date(2025, 11, 11), dt.date(2026, 6, 18)):
        n = counts[days == (sale_day - dt.date(1970, 1, 1)).days][0]
        assert n > 2.5 * median
    assert counts.argmax() in {
        np.flatnonzero(days == (d - dt.date(1970, 1, 1)).days)[0]
        for d in (dt.date(2025, 11, 11), dt.date(2026, 6, 18))
    }


def test_weekends_sell_more_than_midweek(b2c) -> None:
    days, counts = _orders_by_local_day(b2c)
    weekday = (days + 3) % 7  # Monday = 0
    late = days > days.min() + 60  # the customer base has grown
    weekend = counts[late & (weekday >= 5)].mean()
    midweek = counts[late & np.isin(weekday, [1, 2, 3])].mean()
    assert weekend > 1.2 * midweek


# --- sessions, identity ------------------------------------------------------------------


def test_every_order_follows_a_same_day_session_with_cart(b2c) -> None:
    orders = b2c.of_type("order")
    sid = _prop(orders, "session_id")
    assert sid.null_count == 0
    order_ts = _ts(orders)
    times = {}
    for kind in ("visit", "add_to_cart"):
        ev = b2c.of_type(kind)
        idx = pc.fill_null(pc.index_in(sid, value_set=_prop(ev, "session_id")), -1).to_numpy()
        times[kind] = np.where(idx >= 0, _ts(ev)[np.maximum(idx, 0)], -1)
    start_us = (b2c.result.start - dt.date(1970, 1, 1)).days * US_PER_DAY
    has = (times["visit"] >= 0) & (times["add_to_cart"] >= 0)
    assert has[order_ts >= start_us + US_PER_DAY].all()  # first-day sessions may start before
    v, c, t = times["visit"][has], times["add_to_cart"][has], order_ts[has]
    assert np.all(v < c) and np.all(c < t)
    assert np.all(v // US_PER_DAY == t // US_PER_DAY)
    assert np.all((v + CN_OFFSET_US) // US_PER_DAY == (t + CN_OFFSET_US) // US_PER_DAY)


def test_browsing_without_orders_includes_abandoned_carts(b2c) -> None:
    carts = b2c.of_type("add_to_cart")
    ordered = set(_prop(b2c.of_type("order"), "session_id").to_pylist())
    abandoned = [s not in ordered for s in _prop(carts, "session_id").to_pylist()]
    assert 0.2 < np.mean(abandoned) < 0.8
    visits = b2c.of_type("visit").num_rows
    assert visits > 1.8 * b2c.of_type("order").num_rows


def test_anonymous_visitors_are_linked_by_a_later_login(b2c) -> None:
    ev = b2c.events
    anonymous = ev.filter(pc.and_(pc.is_null(ev["user_id"]), pc.is_valid(ev["anonymous_id"])))
    assert set(_np(anonymous, "event_type")) <= {"visit", "search", "view", "add_to_cart"}
    assert anonymous.num_rows > 1_000
    linked = ev.filter(pc.and_(pc.is_valid(ev["user_id"]), pc.is_valid(ev["anonymous_id"])))
    pairs = set(zip(_np(linked, "anonymous_id"), _np(linked, "user_id"), strict=True))
    owner: dict[str, str] = {}
    for anon, user in pairs:
        assert owner.setdefault(anon, user) == user  # one device, one customer
    anon_ids = set(_np(anonymous, "anonymous_id"))
    assert len(anon_ids & set(owner)) > 0.8 * len(anon_ids)


def test_duplicate_registrations_share_email_hash_with_their_original(b2c) -> None:
    users, truth = b2c.users, b2c.truth
    dup = _np(truth, "is_duplicate")
    assert 0.015 < dup.mean() < 0.025
    email = dict(zip(_np(users, "user_id"), _np(users, "email_hash"), strict=True))
    canonical = _np(truth, "canonical_user_id")
    user_id = _np(truth, "user_id")
    assert np.all(canonical[~dup] == user_id[~dup])
    assert not np.any(np.isin(canonical[dup], user_id[dup]))
    assert all(email[u] == email[c] for u, c in zip(user_id[dup], canonical[dup], strict=True))
    assert len(set(email.values())) == (~dup).sum()
    assert all(re.fullmatch(r"[0-9a-f]{64}", e) for e in list(email.values())[:500])
    card = users["loyalty_card"].filter(pa.array(dup))
    assert card.null_count == 0
    share = _np(truth, "order_share")
    assert np.allclose(share[dup], 0.4)
    dup_orders = b2c.of_type("order").filter(
        pc.is_in(b2c.of_type("order")["user_id"], pa.array(user_id[dup]))
    )
    assert dup_orders.num_rows > 50
    assert set(_np(dup_orders, "channel")) == {"offline_store"}


# --- service experience drives churn ------------------------------------------------------


def _late(b2c, order_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whether each order's delivery was late, and whether its delivery is in the data."""
    deliveries = b2c.of_type("delivery")
    late_days = pc.cast(_prop(deliveries, "late_days"), pa.int64()).to_numpy()
    ids = _np(deliveries, "order_id")
    known = np.isin(order_ids, ids)
    return _lookup(ids, late_days > 0, order_ids, False).astype(bool), known


def test_deliveries_record_promised_and_actual_dates(b2c) -> None:
    deliveries = b2c.of_type("delivery")
    late_days = pc.cast(_prop(deliveries, "late_days"), pa.int64()).to_numpy()
    assert 0.10 <= (late_days > 0).mean() <= 0.15
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    promised = pc.strptime(_prop(deliveries, "promised_ts"), fmt, "s")
    delivered = pc.strptime(_prop(deliveries, "delivered_ts"), fmt, "s")
    after = pc.greater(delivered, promised).to_numpy(zero_copy_only=False)
    assert np.array_equal(after, late_days > 0)
    assert np.array_equal(_ts(deliveries) // 1_000_000, delivered.cast(pa.int64()).to_numpy())
    orders = b2c.of_type("order")
    cutoff = (b2c.result.end - dt.date(1970, 1, 1)).days * US_PER_DAY - 12 * US_PER_DAY
    old = _np(orders, "order_id")[_ts(orders) < cutoff]
    assert np.isin(old, _np(deliveries, "order_id")).all()
    order_ts = _lookup(_np(orders, "order_id"), _ts(orders), _np(deliveries, "order_id"), -1)
    assert np.all(_ts(deliveries) > order_ts)


def test_late_deliveries_raise_dropout_and_tickets(b2c) -> None:
    truth, orders = b2c.truth, b2c.of_type("order")
    order_ids = _np(orders, "order_id")
    person = _lookup(
        _np(truth, "user_id"), _np(truth, "canonical_user_id"), _np(orders, "user_id"), ""
    )
    dropout = _lookup(_np(truth, "user_id"), _ts(truth, "dropout_ts"), person, -1)
    died = dropout == _ts(orders)
    late, known = _late(b2c, order_ids)
    rate_late = died[known & late].mean()
    rate_on_time = died[known & ~late].mean()
    assert rate_late > 1.5 * rate_on_time
    with_ticket = np.isin(order_ids, _np(b2c.of_type("ticket_opened"), "order_id"))
    assert with_ticket[known & late].mean() > 5 * with_ticket[known & ~late].mean()
    resolved = b2c.of_type("ticket_resolved")
    first = pc.cast(_prop(resolved, "first_response_hours"), pa.float64()).to_numpy()
    total = pc.cast(_prop(resolved, "resolution_hours"), pa.float64()).to_numpy()
    assert np.all(first <= total) and (total > 48).mean() > 0.1


def test_nps_is_lower_after_late_delivery(b2c) -> None:
    nps = b2c.of_type("nps_response")
    score = pc.cast(_prop(nps, "score"), pa.int64()).to_numpy()
    assert score.min() >= 0 and score.max() <= 10
    was_late, _ = _late(b2c, _np(nps, "order_id"))
    assert score[~was_late].mean() > score[was_late].mean() + 1.5


def test_price_sensitive_customers_use_more_coupons(b2c) -> None:
    orders = b2c.of_type("order")
    truth = b2c.truth
    ps = _lookup(_np(truth, "user_id"), _np(truth, "price_sensitivity"), _np(orders, "user_id"), 0)
    coupon = pc.is_valid(_prop(orders, "coupon_code")).to_numpy(zero_copy_only=False)
    lo, hi = np.quantile(ps, [1 / 3, 2 / 3])
    assert coupon[ps > hi].mean() > 1.5 * coupon[ps < lo].mean()
    redeemed = b2c.of_type("coupon_redeemed")
    assert redeemed.num_rows == coupon.sum()


def test_message_engagement_falls_after_dropout(b2c) -> None:
    truth, sent, opened = b2c.truth, b2c.of_type("message_sent"), b2c.of_type("message_opened")
    opened_ids = _prop(opened, "message_id")
    was_opened = pc.is_in(_prop(sent, "message_id"), value_set=opened_ids).to_numpy(False)
    dropout = _lookup(_np(truth, "user_id"), _ts(truth, "dropout_ts"), _np(sent, "user_id"), -1)
    after = (dropout >= 0) & (_ts(sent) > dropout)
    never = _lookup(_np(truth, "user_id"), _np(truth, "never_buyer"), _np(sent, "user_id"), False)
    buyer = ~never.astype(bool)
    assert after[buyer].mean() > 0.1
    assert was_opened[buyer & ~after].mean() > 2.5 * was_opened[buyer & after].mean()


# --- ground truth ---------------------------------------------------------------------------


def test_expected_orders_follow_the_bgnbd_closed_form(b2c) -> None:
    t = b2c.truth
    alive = _np(t, "alive_at_end")
    lam, p, share = _np(t, "purchase_rate"), _np(t, "dropout_prob_effective"), _np(t, "order_share")
    for h in (30, 365):
        got = _np(t, f"expected_orders_{h}d")
        assert np.all(got[~alive] == 0)
        closed = (1 - np.exp(-lam * p * h)) / p * share
        np.testing.assert_allclose(got[alive], closed[alive], rtol=0.06)
    e = [_np(t, f"expected_orders_{h}d") for h in (30, 90, 180, 365)]
    assert all(np.all(a <= b) for a, b in itertools.pairwise(e))
    spend = _np(t, "expected_spend_365d")
    np.testing.assert_allclose(spend, e[-1] * _np(t, "mean_order_value"))
    assert np.all(_np(t, "dropout_prob_effective") >= _np(t, "dropout_prob"))


def test_campaign_is_randomised_and_effects_are_heterogeneous(b2c) -> None:
    t = b2c.truth
    pop = _np(t, "in_campaign")
    treated = _np(t, "treated")
    assert not np.any(treated & ~pop)
    assert 0.48 < treated[pop].mean() < 0.52
    assert np.all(_np(t, "propensity")[pop] == 0.5)
    assert t["propensity"].filter(pa.array(~pop)).null_count == (~pop).sum()
    effect = _np(t, "true_effect_orders")[pop]
    assert (effect < -1e-3).mean() > 0.05
    assert (effect > 1e-3).mean() > 0.2
    assert (np.abs(effect) < 1e-3).mean() > 0.3
    assert np.all(_np(t, "true_effect_orders")[~pop] == 0)
    lift = _np(t, "campaign_lift")[pop]
    assert (lift < 0).mean() > 0.1 and (np.abs(lift) < 0.1).mean() > 0.3
    assert (lift > 0.3).mean() > 0.15
    organic = _np(b2c.users, "acquisition_channel") == "organic"
    rate = _np(t, "purchase_rate")
    heavy = organic & (rate > 2 * rate[rate > 0].mean())
    assert _np(t, "campaign_lift")[heavy].mean() < -0.1  # sleeping dogs
    revenue = _np(t, "true_effect_revenue")
    np.testing.assert_allclose(revenue, _np(t, "true_effect_orders") * _np(t, "mean_order_value"))
    issued = b2c.of_type("coupon_issued")
    issued_users = _np(issued, "user_id")
    assert len(set(issued_users)) == issued.num_rows
    user_id = _np(t, "user_id")
    assert set(issued_users) == set(user_id[treated & ~_np(t, "is_duplicate")])


def test_campaign_truth_matches_realised_orders(b2c) -> None:
    """Realised orders in each person's 30-day campaign window match the true expectation.

    Duplicate accounts are folded into their person with ``canonical_user_id``.
    """
    t, orders = b2c.truth, b2c.of_type("order")
    user_id, canonical = _np(t, "user_id"), _np(t, "canonical_user_id")
    person = _lookup(user_id, canonical, _np(orders, "user_id"), "")
    start = _lookup(user_id, _ts(t, "campaign_start_ts"), person, -1)
    in_window = (start >= 0) & (_ts(orders) >= start) & (_ts(orders) < start + 30 * US_PER_DAY)
    persons = user_id[_np(t, "in_campaign") & ~_np(t, "is_duplicate")]
    realised = np.array([0, *np.unique(person[in_window], return_counts=True)[1]])
    realised_ids = np.array(["", *np.unique(person[in_window])])
    got = _lookup(realised_ids, realised, persons, 0).astype(float)
    treated = _lookup(user_id, _np(t, "treated"), persons, False).astype(bool)
    for arm, col in ((False, "campaign_orders_if_control"), (True, "campaign_orders_if_treated")):
        rows = np.argsort(canonical)
        sums = np.add.reduceat(_np(t, col)[rows], np.unique(canonical[rows], return_index=True)[1])
        want = _lookup(np.unique(canonical[rows]), sums, persons, 0.0)
        g, w = got[treated == arm], want[treated == arm]
        se = g.std() / np.sqrt(g.size)
        assert abs(g.mean() - w.mean()) < 4 * se, (arm, g.mean(), w.mean(), se)
        assert w.mean() > 0.05


# --- presets ---------------------------------------------------------------------------------


def test_b2b_accounts_have_several_buyers(b2b) -> None:
    users = b2b.users
    assert set(_np(users, "customer_type")) == {"b2b"}
    assert users["account_id"].null_count == 0
    assert users["industry"].null_count == 0
    _, per_account = np.unique(_np(users, "account_id"), return_counts=True)
    assert per_account.mean() > 1.8
    assert (per_account >= 3).mean() > 0.2
    assert set(_np(users, "company_size")) == {"1-9", "10-49", "50-249", "250+"}
    size = _np(users, "company_size")
    mov = _np(b2b.truth, "mean_order_value")
    assert np.median(mov[size == "250+"]) > 4 * np.median(mov[size == "1-9"])
    orders = b2b.of_type("order")
    assert orders["account_id"].null_count == 0
    channel = _np(orders, "channel")
    assert np.isin(channel, ["web", "offline_store"]).mean() > 0.6
    b2c_like = np.median(_np(orders, "revenue"))
    assert b2c_like > 1_000


def test_b2b_orders_on_weekdays(b2b) -> None:
    day = _local_day(b2b.of_type("order"), CN_OFFSET_US)
    weekday = (day + 3) % 7
    assert (weekday < 5).mean() > 0.85


def test_crossborder_currency_timezone_and_language_match_the_country(crossborder) -> None:
    users, truth = crossborder.users, crossborder.truth
    countries = _np(users, "country")
    assert len(set(countries)) >= 15
    assert all(re.fullmatch(r"[A-Z]{2}", c) for c in set(countries))
    for tz in set(_np(users, "timezone")):
        zoneinfo.ZoneInfo(tz)
    assert all(re.fullmatch(r"[a-z]{2}-[A-Z]{2}", lang) for lang in set(_np(users, "language")))
    orders = crossborder.of_type("order")
    pairs = set(zip(_np(orders, "country"), _np(orders, "currency"), strict=True))
    by_country: dict[str, set[str]] = {}
    for country, currency in pairs:
        by_country.setdefault(country, set()).add(currency)
    assert all(len(c) == 1 for c in by_country.values())
    expect = {
        "US": "USD",
        "JP": "JPY",
        "DE": "EUR",
        "FR": "EUR",
        "GB": "GBP",
        "BR": "BRL",
        "KR": "KRW",
    }
    for country, currency in expect.items():
        assert by_country[country] == {currency}
    jpy = _np(orders, "revenue")[_np(orders, "currency") == "JPY"]
    usd = _np(orders, "revenue")[_np(orders, "currency") == "USD"]
    assert np.all(jpy == np.round(jpy))
    assert 50 < np.median(jpy) / np.median(usd) < 300
    assert set(_np(truth, "currency")) == {c for cs in by_country.values() for c in cs}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_use_valid_codes(name: str) -> None:
    preset = PRESETS[name]
    for geo in preset.geos:
        assert re.fullmatch(r"[A-Z]{2}", geo.country)
        assert re.fullmatch(r"[A-Z]{3}", geo.currency)
        zoneinfo.ZoneInfo(geo.timezone)
    channels = {c for c, _ in preset.sales_channels}
    assert channels <= {"app", "web", "mini_program", "offline_store", "marketplace"}
    assert 0.25 <= preset.never_buyer_share <= 0.35
