"""Offer choice by the uplift policy (a stub until it lands: the first offer)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def choose_offers(
    ws: Any, user_ids: Sequence[str], offers: Sequence[str], *, margin: float, cost: float
) -> dict[str, str | None]:
    """For each customer the offer (coupon id) with the highest expected incremental
    value (uplift × margin − cost), or None when no offer pays for itself."""
    return {u: (offers[0] if offers else None) for u in user_ids}
