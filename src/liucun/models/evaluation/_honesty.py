"""Sentences for scorers that rank no better than chance on held-out time.

A scorer whose AUC is below 0.5 orders customers worse than a coin would: the customers it
calls safest churn most. BG/NBD does this on shops where most buyers never return, because
it gives every customer without a repeat order P(alive) = 1 by construction. A table of
AUCs does not say so to a manager; :func:`ranking_warnings` writes the sentence.

"Worse than random" is judged against the spread of a random ordering on the same
customers: under a random score the AUC (the Mann–Whitney statistic over ``P × N``) has
mean 0.5 and variance ``(P + N + 1) / (12 P N)``, so an AUC more than 1.96 of those
standard deviations below 0.5 is worse than random, and one within them is no better.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

#: The AUC of a random ordering.
RANDOM_AUC = 0.5
#: Two-sided 95 % normal quantile of the random-ordering band.
_Z = 1.96
WORSE_THAN_RANDOM = "worse_than_random"
NO_BETTER_THAN_RANDOM = "no_better_than_random"

_LABELS = {
    "churn_model": "the churn model",
    "recency_rule": "the recency rule (days since the last order)",
    "rfm_score": "the RFM score",
    "btyd_p_dead": "BG/NBD (1 − P(alive))",
}


@dataclass(frozen=True)
class RankingWarning:
    """One scorer ranked no better than random: ``code`` (:data:`WORSE_THAN_RANDOM` or
    :data:`NO_BETTER_THAN_RANDOM`), the scorer (``subject``), its AUC (``measured``), the
    random ordering's (``reference``, 0.5) and the sentence (``text``)."""

    code: str
    subject: str
    measured: float
    reference: float
    text: str


def random_auc_band(positives: int, negatives: int, *, z: float = _Z) -> float:
    """Half-width of the band a random ordering's AUC falls in (95 % by default)."""
    if positives < 1 or negatives < 1:
        return math.nan
    return z * math.sqrt((positives + negatives + 1) / (12.0 * positives * negatives))


def ranking_warnings(
    comparison: pd.DataFrame,
    *,
    frequency: Any = None,
    churned: Any = None,
    horizon_days: int | None = None,
) -> list[RankingWarning]:
    """A sentence for every scorer of ``comparison`` that ranks worse than random, and for
    every model that ranks no better than random.

    Parameters
    ----------
    comparison
        A table from :func:`compare` (indexed by scorer, with ``role``, ``customers``,
        ``positives`` and ``auc``).
    frequency, churned
        Optional, aligned per customer: repeat purchases at the cut-off (the BTYD
        ``frequency``) and the 0/1 outcome. With them, the BG/NBD sentence says how many
        customers had no repeat order and how many of those churned.
    horizon_days
        The horizon of the outcome, for the sentence.
    """
    out: list[RankingWarning] = []
    for scorer, row in comparison.iterrows():
        auc = float(row.get("auc", np.nan))
        n, p = int(row.get("customers", 0)), int(row.get("positives", 0))
        band = random_auc_band(p, n - p)
        if not (math.isfinite(auc) and math.isfinite(band)):
            continue
        name = str(scorer)
        label = _LABELS.get(name, name)
        within = f"a random order lands within 0.5 ± {band:.3f} on these {n:,} customers"
        if auc < RANDOM_AUC - band:
            text = (
                f"{label[0].upper()}{label[1:]} ranks customers worse than random on "
                f"held-out time: AUC {auc:.3f} vs 0.5 ({within}); the customers it calls "
                "safest are the likeliest to leave."
            )
            if name == "btyd_p_dead":
                text += _one_time_buyers(frequency, churned, horizon_days)
            out.append(RankingWarning(WORSE_THAN_RANDOM, name, auc, RANDOM_AUC, text))
        elif row.get("role") == "model" and auc <= RANDOM_AUC + band:
            text = (
                f"{label[0].upper()}{label[1:]} ranks customers no better than random on "
                f"held-out time: AUC {auc:.3f} vs 0.5 ({within}); do not use its scores to "
                "pick customers."
            )
            out.append(RankingWarning(NO_BETTER_THAN_RANDOM, name, auc, RANDOM_AUC, text))
    return out


def _one_time_buyers(frequency: Any, churned: Any, horizon_days: int | None) -> str:
    base = (
        " BG/NBD calls every customer without a repeat order alive (P(alive) = 1, so "
        "1 − P(alive) = 0)"
    )
    if frequency is None or churned is None:
        return base + "; rank by the churn model's risk, not by P(alive)."
    x = np.asarray(frequency, dtype=np.float64)
    y = np.asarray(churned, dtype=np.float64)
    once = x == 0
    k = int(once.sum())
    if k == 0:
        return base + "; rank by the churn model's risk, not by P(alive)."
    within = f" in the next {horizon_days} days" if horizon_days else ""
    gone = float(y[once].mean())
    return (
        f"{base}: {k:,} of {x.size:,} customers here, {round(100 * gone)}% of whom ordered "
        f"nothing{within}. Rank by the churn model's risk, not by P(alive)."
    )
