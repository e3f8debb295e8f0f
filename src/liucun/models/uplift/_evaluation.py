"""How good is an uplift ranking? Qini curve, AUUC, uplift at top-k, recovery of true effects.

Units are ranked by a score (predicted uplift), best first. Among the top ``k`` of ``n``
units, with ``Y_T(k)``, ``N_T(k)`` the treated units' outcome sum and count and
``Y_C(k)``, ``N_C(k)`` the control units', Radcliffe's (2007) Qini curve is

    Q(k) = Y_T(k) − Y_C(k) · N_T(k) / N_C(k)          (0 while N_C(k) = 0)

liucun divides it by ``N_T(n)``, so the curve reads as *incremental outcome per unit of
the population* when the top ``φ = k/n`` are treated: ``gain(φ) ≈ (1/n) Σ_top τᵢ``, and
``gain(1)`` is the difference in means (the average treatment effect). Units with tied
scores enter together (the curve is evaluated between tie groups and linear within
them). With per-unit ``propensity`` every treated unit is weighted by ``1/e`` and every
control unit by ``1/(1 − e)`` (sums of weights replace the counts).

**AUUC** here is the area between the curve and the straight line of a random ranking,
``∫₀¹ (gain(φ) − φ·gain(1)) dφ``, in outcome units per unit of population:

- a random ranking scores 0 in expectation (a constant score exactly 0);
- a useful ranking scores > 0, a harmful one < 0;
- the *oracle* ranking (by the true individual effects, known on simulated data) scores
  the most in expectation; its area on the true effects, ``oracle_auuc`` of
  :func:`evaluate_uplift`, is the scale: ``qini_coefficient = true_auuc / oracle_auuc``
  is 1 for a perfect ranking and 0 for a random one. (Radcliffe's "perfect" Qini curve
  of observed responses exists only for binary outcomes; liucun does not use it.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from liucun.core import InvalidInput
from liucun.models.uplift._inputs import (
    BoolArray,
    FloatArray,
    as_float,
    as_propensity,
    as_treatment,
    require_both_arms,
)

#: Reason codes of :class:`UpliftAtK`.
OK = "ok"
NO_TREATED = "no_treated_units"
NO_CONTROL = "no_control_units"


def ipw_difference(y: FloatArray, t: BoolArray, e: FloatArray) -> tuple[float, float]:
    """Weighted difference in means, treated minus control, and its standard error.

    Treated units weigh ``1/e``, control units ``1/(1 − e)`` (Hájek means; with a constant
    propensity the plain means). The standard error is the linearization
    ``√(Σ w²(y − ȳ)² / (Σ w)²)`` summed over both arms. NaN when an arm is empty.
    """
    out, var = 0.0, 0.0
    for arm, w, sign in ((t, 1.0 / e[t], 1.0), (~t, 1.0 / (1.0 - e[~t]), -1.0)):
        if w.size == 0:
            return math.nan, math.nan
        mean = float(np.sum(w * y[arm]) / w.sum())
        out += sign * mean
        var += float(np.sum(w**2 * (y[arm] - mean) ** 2) / w.sum() ** 2)
    return out, math.sqrt(var)


def randomized_inputs(
    y: Any, treatment: Any, score: Any, propensity: Any
) -> tuple[FloatArray, BoolArray, FloatArray, FloatArray]:
    """Checked outcome, treatment, score and propensity of randomized evaluation data."""
    s = as_float("score", score)
    if s.size == 0:
        raise InvalidInput("score is empty; there is nothing to evaluate")
    t = as_treatment(treatment, s.size)
    yy = as_float("y", y, s.size)
    require_both_arms(t, minimum=1)
    return yy, t, s, as_propensity(propensity, t)


@dataclass(frozen=True)
class QiniCurve:
    """A Qini curve: ``gain`` (incremental outcome per unit of population) at each
    ``fraction`` of units targeted, both starting at 0 and ``fraction`` ending at 1."""

    fraction: FloatArray
    gain: FloatArray

    def area(self) -> float:
        """Area between the curve and the random-ranking line (the AUUC)."""
        return float(np.trapezoid(self.gain, self.fraction) - self.gain[-1] / 2.0)

    def at(self, fraction: float) -> float:
        """The curve at ``fraction`` (linear between points)."""
        return float(np.interp(fraction, self.fraction, self.gain))


def _ranked(score: FloatArray) -> tuple[np.ndarray, np.ndarray]:
    """Descending order (stable) and the last position of every tie group."""
    order = np.argsort(-score, kind="stable")
    s = score[order]
    last = np.r_[np.flatnonzero(s[1:] != s[:-1]), s.size - 1]
    return order, last


def qini_curve(y: Any, treatment: Any, score: Any, *, propensity: Any = None) -> QiniCurve:
    """The Qini curve of ranking units by ``score`` (highest first).

    Parameters
    ----------
    y
        Observed outcome per unit.
    treatment
        1/True treated, 0/False control.
    score
        Ranking score, e.g. predicted uplift.
    propensity
        Probability of treatment (scalar or per unit); per-unit values re-weight the arms.

    Examples
    --------
    >>> c = qini_curve([1, 0, 1, 0], [1, 1, 0, 0], [4, 3, 2, 1])
    >>> c.gain.tolist(), c.area()
    ([0.0, 0.5, 0.5, -0.5, 0.0], 0.125)
    """
    yy, t, s, e = randomized_inputs(y, treatment, score, propensity)
    w = np.where(t, 1.0 / e, 1.0 / (1.0 - e))
    order, last = _ranked(s)
    wt = np.where(t, w, 0.0)[order]
    wc = np.where(t, 0.0, w)[order]
    cum_wt, cum_wc = np.cumsum(wt)[last], np.cumsum(wc)[last]
    cum_yt, cum_yc = np.cumsum(wt * yy[order])[last], np.cumsum(wc * yy[order])[last]
    ratio = np.divide(cum_wt, cum_wc, out=np.zeros_like(cum_wt), where=cum_wc > 0)
    total_t = wt.sum()
    gain = (cum_yt - cum_yc * ratio) / total_t if total_t > 0 else np.zeros_like(cum_wt)
    return QiniCurve(
        fraction=np.r_[0.0, (last + 1) / s.size], gain=np.r_[0.0, gain].astype(np.float64)
    )


def auuc(y: Any, treatment: Any, score: Any, *, propensity: Any = None) -> float:
    """Area between the Qini curve and the random line: 0 for a random ranking, > 0 when
    the ranking finds the units who respond (see the module docstring for the scale).

    Examples
    --------
    >>> auuc([1, 0, 1, 0], [1, 1, 0, 0], [4, 3, 2, 1])
    0.125
    >>> auuc([1, 0, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1])
    0.0
    """
    return qini_curve(y, treatment, score, propensity=propensity).area()


def effect_curve(true_effect: Any, score: Any) -> QiniCurve:
    """The noise-free counterpart of the Qini curve on simulated data:
    ``gain(φ) = (1/n) Σ_top τᵢ`` with the true individual effects ``τ``."""
    tau = as_float("true_effect", true_effect)
    s = as_float("score", score, tau.size)
    if s.size == 0:
        raise InvalidInput("score is empty; there is nothing to evaluate")
    order, last = _ranked(s)
    gain = np.cumsum(tau[order])[last] / s.size
    return QiniCurve(fraction=np.r_[0.0, (last + 1) / s.size], gain=np.r_[0.0, gain])


@dataclass(frozen=True)
class UpliftAtK:
    """Observed uplift (treated minus control mean) among the top ``fraction`` of units.

    ``reason`` is ``"ok"``, or ``"no_treated_units"`` / ``"no_control_units"`` when the top
    group lacks an arm (then ``uplift`` and ``se`` are NaN).
    """

    fraction: float
    n: int
    n_treated: int
    n_control: int
    uplift: float
    se: float
    reason: str


def uplift_at_k(
    y: Any, treatment: Any, score: Any, fraction: float, *, propensity: Any = None
) -> UpliftAtK:
    """Uplift among the ``⌈fraction·n⌉`` highest-scored units (ties at the cut: row order).

    Examples
    --------
    >>> r = uplift_at_k([3, 1, 1, 0], [1, 0, 1, 0], [4, 3, 2, 1], 0.5)
    >>> r.uplift, r.reason
    (2.0, 'ok')
    """
    if not 0.0 < fraction <= 1.0:
        raise InvalidInput(f"fraction must be in (0, 1], got {fraction!r}; e.g. 0.1 for top 10 %")
    yy, t, s, e = randomized_inputs(y, treatment, score, propensity)
    top = np.argsort(-s, kind="stable")[: math.ceil(fraction * s.size - 1e-9)]
    tt = t[top]
    n_t, n_c = int(tt.sum()), int(top.size - tt.sum())
    reason = OK if n_t and n_c else NO_TREATED if not n_t else NO_CONTROL
    est, se = ipw_difference(yy[top], tt, e[top]) if reason == OK else (math.nan, math.nan)
    return UpliftAtK(float(fraction), int(top.size), n_t, n_c, est, se, reason)


def _correlation(a: FloatArray, b: FloatArray, *, rank: bool) -> float | None:
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    if rank:
        return float(stats.spearmanr(a, b).statistic)
    return float(np.corrcoef(a, b)[0, 1])


@dataclass(frozen=True)
class UpliftEvaluation:
    """Everything :func:`evaluate_uplift` measures.

    Observed (any randomized data): ``auuc``, ``qini``, ``uplift_at`` and the difference
    in means ``ate`` (± ``ate_se``). With true effects (simulated data): Pearson and
    Spearman correlation of score and truth, ``true_auuc`` (area of the ranking scored on
    the true effects), ``oracle_auuc`` (the same for the ranking by the truth itself) and
    ``qini_coefficient = true_auuc / oracle_auuc``; ``None`` when not computable (no true
    effects, constant scores, or an oracle area ≤ 0).
    """

    n: int
    n_treated: int
    n_control: int
    ate: float
    ate_se: float
    auuc: float
    qini: QiniCurve
    uplift_at: tuple[UpliftAtK, ...]
    pearson: float | None = None
    spearman: float | None = None
    true_auuc: float | None = None
    oracle_auuc: float | None = None
    qini_coefficient: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """Scalar figures as a flat dict (for JSON and tables); the curve is left out."""
        out: dict[str, Any] = {
            k: getattr(self, k)
            for k in (
                "n",
                "n_treated",
                "n_control",
                "ate",
                "ate_se",
                "auuc",
                "pearson",
                "spearman",
                "true_auuc",
                "oracle_auuc",
                "qini_coefficient",
            )
        }
        for r in self.uplift_at:
            out[f"uplift_at_{round(r.fraction * 100):d}pct"] = r.uplift
        return out


def evaluate_uplift(
    y: Any,
    treatment: Any,
    score: Any,
    *,
    propensity: Any = None,
    true_effect: Any = None,
    fractions: Sequence[float] = (0.1, 0.2, 0.3, 0.5),
) -> UpliftEvaluation:
    """Score an uplift ranking on held-out randomized data (and on the truth if known).

    Parameters
    ----------
    y, treatment, score, propensity
        As :func:`qini_curve`.
    true_effect
        True individual effects (simulated data), in the units of ``y``.
    fractions
        Top fractions for :func:`uplift_at_k`.
    """
    yy, t, s, e = randomized_inputs(y, treatment, score, propensity)
    curve = qini_curve(yy, t, s, propensity=e)
    ate, ate_se = ipw_difference(yy, t, e)
    at = tuple(uplift_at_k(yy, t, s, f, propensity=e) for f in fractions)
    extra: dict[str, float | None] = {}
    if true_effect is not None:
        tau = as_float("true_effect", true_effect, s.size)
        true_area = effect_curve(tau, s).area()
        oracle = effect_curve(tau, tau).area()
        extra = {
            "pearson": _correlation(s, tau, rank=False),
            "spearman": _correlation(s, tau, rank=True),
            "true_auuc": true_area,
            "oracle_auuc": oracle,
            "qini_coefficient": true_area / oracle if oracle > 0 else None,
        }
    return UpliftEvaluation(
        n=int(s.size),
        n_treated=int(t.sum()),
        n_control=int((~t).sum()),
        ate=ate,
        ate_se=ate_se,
        auuc=curve.area(),
        qini=curve,
        uplift_at=at,
        **extra,  # type: ignore[arg-type]
    )


#: Where a targeting verdict's values come from.
TargetingBasis = Literal["true_effects", "held_out_estimate"]


@dataclass(frozen=True)
class TargetingVerdict:
    """Does targeting by uplift beat targeting by churn risk?

    ``uplift_value`` and ``churn_risk_value`` are the incremental profit per customer of
    each rule at the same budget: on the simulated true effects when every policy has
    one (``basis="true_effects"``), else the inverse-propensity estimate on the held-out
    randomized customers (``"held_out_estimate"``).
    """

    uplift_value: float
    churn_risk_value: float
    basis: TargetingBasis

    @property
    def uplift_wins(self) -> bool:
        return self.uplift_value > self.churn_risk_value


def targeting_verdict(policies: pd.DataFrame) -> TargetingVerdict | None:
    """The verdict from :func:`compare_policies`' table (``policy``, ``value`` and
    ``true_value`` columns); None when it has no ``churn_risk`` policy to compare with
    (no saved churn model)."""
    rows = policies.set_index("policy")
    if "churn_risk" not in rows.index or "uplift" not in rows.index:
        return None
    truth = "true_value" in rows.columns and bool(rows.true_value.notna().all())
    column = "true_value" if truth else "value"
    return TargetingVerdict(
        uplift_value=float(rows.loc["uplift", column]),
        churn_risk_value=float(rows.loc["churn_risk", column]),
        basis="true_effects" if truth else "held_out_estimate",
    )


def ranking_auuc(evaluations: Mapping[str, UpliftEvaluation]) -> dict[str, float]:
    """Each ranking's AUUC as an uplift ranking: on the true effects when known, else
    on the observed outcomes (0 = a random ranking)."""
    return {
        name: ev.true_auuc if ev.true_auuc is not None else ev.auuc
        for name, ev in evaluations.items()
    }
