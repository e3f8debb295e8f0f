"""Offer choice by the uplift model: for each customer the coupon with the highest
expected incremental value, or none when no offer pays for itself.

For customer *i* and offer *o* (a coupon id of the loyalty program)::

    value(i, o) = effect(i, o) × margin − (face(i, o) + cost)

``effect`` is the saved uplift model's predicted effect (CATE) on the customer's current
features (:func:`liucun.models.uplift.pre_campaign_features` as of now): when the model's
outcome is ``revenue`` that is incremental revenue; when it is ``orders``, incremental
orders × the customer's expected order value (their mean order revenue so far; the
mean of the customers given for one who never ordered). ``face`` is the coupon's value
(a percent coupon: its percent of the expected order value) — counted in full, as if
redeemed. ``cost`` is the per-send cost.

One uplift model predicts one effect per customer, whatever the offer: then the cheapest
offer with a positive value wins. Give ``models={coupon_id: version}`` (an uplift model
trained on a campaign of each offer) for effects that differ by offer.

When no uplift model is saved (``liucun uplift train`` makes one) the first offer is
chosen for everyone, with basis ``no_uplift_model`` in :func:`offer_choices` — the journey
still runs and its control arm still measures it; the engine records the basis in the
step detail.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from liucun.core import ConfigError, Hint, as_utc

UPLIFT_BASIS = "uplift"
NO_MODEL = "no_uplift_model"
NONE_POSITIVE = "no_positive_offer"


@dataclass(frozen=True)
class OfferChoice:
    """The offer chosen for one customer (None: none pays for itself), its expected
    incremental value, and the ``basis`` (uplift, no_uplift_model, no_positive_offer)."""

    user_id: str
    offer: str | None
    value: float | None
    basis: str
    values: Mapping[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "user_id": self.user_id,
            "offer": self.offer,
            "value": self.value,
            "basis": self.basis,
            "values": None if self.values is None else dict(self.values),
        }


def choose_offers(
    ws: Any,
    user_ids: Sequence[str],
    offers: Sequence[str],
    *,
    margin: float,
    cost: float,
    program: str | None = None,
    models: Mapping[str, str] | None = None,
    as_of: datetime | None = None,
) -> dict[str, str | None]:
    """For each customer the offer (coupon id) with the highest expected incremental
    value (uplift × margin − cost), or None when no offer pays for itself."""
    return {
        c.user_id: c.offer
        for c in offer_choices(
            ws,
            user_ids,
            offers,
            margin=margin,
            cost=cost,
            program=program,
            models=models,
            as_of=as_of,
        )
    }


def offer_choices(
    ws: Any,
    user_ids: Sequence[str],
    offers: Sequence[str],
    *,
    margin: float,
    cost: float,
    program: str | None = None,
    models: Mapping[str, str] | None = None,
    as_of: datetime | None = None,
) -> list[OfferChoice]:
    """:func:`choose_offers` with each customer's value per offer and the basis."""
    from liucun.models._registry import list_models
    from liucun.models.uplift import UPLIFT_MODEL

    users = [str(u) for u in user_ids]
    if not offers or not users:
        return [OfferChoice(u, None, None, NONE_POSITIVE) for u in users]
    if margin < 0 or cost < 0:
        raise ConfigError(
            f"margin and cost must be at least 0, got margin={margin:g}, cost={cost:g}",
            hint=Hint(option="value.margin"),
        )
    if not list_models(ws.models_dir, UPLIFT_MODEL):
        return [OfferChoice(u, offers[0], None, NO_MODEL) for u in users]
    faces = _faces(ws, offers, program)
    effect, aov = _effects(ws, users, offers, models or {}, as_of)
    out = []
    for i, u in enumerate(users):
        values = {}
        for o in offers:
            kind, amount = faces[o]
            face = amount if kind == "value" else amount / 100.0 * aov[i]
            values[o] = float(effect[o][i] * margin - (face + cost))
        best = max(offers, key=lambda o: (values[o], -offers.index(o)))
        if values[best] > 0:
            out.append(OfferChoice(u, best, values[best], UPLIFT_BASIS, values))
        else:
            out.append(OfferChoice(u, None, values[best], NONE_POSITIVE, values))
    return out


def _faces(ws: Any, offers: Sequence[str], program: str | None) -> dict[str, tuple[str, float]]:
    from liucun.loyalty import DEFAULT_PROGRAM, active_program

    prog = active_program(ws, program or DEFAULT_PROGRAM)
    coupons = {c.id: c for c in prog.coupons}
    missing = [o for o in offers if o not in coupons]
    if missing:
        raise ConfigError(
            f"offers {missing} are not coupons of the loyalty program {prog.name!r}; its "
            f"coupons are {sorted(coupons) or 'none'}",
            hint=Hint(option="offers"),
        )
    return {o: (coupons[o].kind, float(coupons[o].amount)) for o in offers}


def _effects(
    ws: Any,
    users: list[str],
    offers: Sequence[str],
    models: Mapping[str, str],
    as_of: datetime | None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per offer the effect in money per customer (revenue, or orders × expected order
    value), and the expected order values."""
    import ibis
    import pandas as pd

    from liucun.models._registry import load_model
    from liucun.models.uplift import FEATURES, UPLIFT_MODEL, pre_campaign_features

    at = as_utc(as_of if as_of is not None else ws.clock.now())
    units = ibis.memtable(pd.DataFrame({"user_id": users}))
    feats = pre_campaign_features(ws.events(), units, as_of=at, users=ws.customers()).to_pandas()
    frame = pd.DataFrame({"user_id": users}).merge(feats, on="user_id", how="left")
    monetary = frame["monetary"].astype(float)
    fallback = float(monetary.mean()) if monetary.notna().any() else 0.0
    aov = monetary.fillna(fallback).to_numpy(dtype=float)
    cache: dict[str | None, np.ndarray] = {}
    out = {}
    for o in offers:
        version = models.get(o)
        if version not in cache:
            bundle, card = load_model(ws.models_dir, UPLIFT_MODEL, version)
            tau = np.asarray(bundle["model"].predict(frame[list(FEATURES)]), dtype=float)
            tau = np.nan_to_num(tau, nan=0.0)
            if str(card.metrics.get("outcome", "revenue")) == "orders":
                tau = tau * aov
            cache[version] = tau
        out[o] = cache[version]
    return out, aov
