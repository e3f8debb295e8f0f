"""The options of an experiment analysis as one frozen value (gbstats' ``AnalysisSettings``).

Every entry point — :func:`~liucun.experiments.analyze_experiment`,
:func:`~liucun.experiments.analyze_outcomes`,
:func:`~liucun.experiments.analyze_outcome_file` — takes one :class:`AnalysisSettings`,
so the CLI, a service and a notebook pass the same object and get the same numbers.
A wrong value raises :class:`~liucun.core.ConfigError` when the settings are made, with
a :class:`~liucun.core.Hint` naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from liucun.core import ConfigError, Hint
from liucun.experiments._roi import ROI_THRESHOLD
from liucun.experiments.stats import DEFAULT_TUNING, Correction

#: The corrections :attr:`AnalysisSettings.correction` accepts (None: no correction).
CORRECTIONS: tuple[Correction | None, ...] = ("bh", "holm", None)


@dataclass(frozen=True)
class AnalysisSettings:
    """How an experiment is analysed.

    Attributes
    ----------
    control
        The control variant (default: ``"control"``, else ``"holdout"``, else the first
        variant by name).
    window_days
        Outcome window after each unit's first exposure, in days.
    horizon_days
        Churn horizon after exposure: churned = no order within it.
    pre_days
        Pre-period before exposure for the CUPED covariates.
    coupon_campaign
        Count only coupons of this ``campaign_id`` as the campaign's cost (default: every
        coupon redeemed in the window).
    relative
        Relative lifts (treatment ÷ control − 1, delta method) instead of differences.
    alpha
        1 − confidence; also the level a corrected p-value must be below to be
        ``significant``.
    cuped
        Use the pre-period covariates (CUPED) where a metric has one.
    sequential
        Always-valid intervals (safe to look every day); ``tuning`` is their mixing
        parameter.
    correction
        Multiple-testing correction across metrics × variants: ``"bh"``
        (Benjamini–Hochberg), ``"holm"`` or None.
    weights
        The configured split for the sample-ratio check, ``{variant: share}`` (default:
        the logged assignment probabilities; equal shares for a file of outcomes).
    contact_cost
        Cost of reaching one treated unit, added to the coupon cost in the ROI.
    margin
        Share of revenue that is profit (1 = revenue ROI).
    roi_threshold
        A campaign is flagged when its ROI lower bound is below this.

    Examples
    --------
    >>> s = AnalysisSettings(sequential=True, correction=None)
    >>> s.with_options(window_days=7).window_days, s.sequential
    (7, True)
    """

    control: str | None = None
    window_days: int = 30
    horizon_days: int = 90
    pre_days: int = 90
    coupon_campaign: str | None = None
    relative: bool = False
    alpha: float = 0.05
    cuped: bool = True
    sequential: bool = False
    tuning: float = DEFAULT_TUNING
    correction: Correction | None = "bh"
    weights: Mapping[str, float] | None = field(default=None, hash=False)
    contact_cost: float = 0.0
    margin: float = 1.0
    roi_threshold: float = ROI_THRESHOLD

    def __post_init__(self) -> None:
        for name, days in (("window_days", self.window_days), ("horizon_days", self.horizon_days)):
            if days < 1:
                raise ConfigError(
                    f"{name} must be at least 1, got {days}", hint=Hint(name, example="30")
                )
        if self.pre_days < 0:
            raise ConfigError(
                f"pre_days must be ≥ 0, got {self.pre_days}", hint=Hint("pre_days", "90")
            )
        if not 0.0 < self.alpha < 1.0:
            raise ConfigError(
                f"alpha must be between 0 and 1, got {self.alpha}", hint=Hint("alpha", "0.05")
            )
        if self.correction not in CORRECTIONS:
            raise ConfigError(
                f"correction must be 'bh', 'holm' or None, got {self.correction!r}",
                hint=Hint("correction", "bh"),
            )
        if self.tuning <= 0:
            raise ConfigError(f"tuning must be > 0, got {self.tuning}", hint=Hint("tuning"))
        if self.contact_cost < 0:
            raise ConfigError(
                f"contact_cost must be ≥ 0, got {self.contact_cost}",
                hint=Hint("contact_cost", "0.5"),
            )
        if not 0 < self.margin <= 1:
            raise ConfigError(
                f"margin must be in (0, 1], got {self.margin}", hint=Hint("margin", "0.3")
            )
        if self.weights is not None:
            bad = [v for v, w in self.weights.items() if not w > 0]
            if not self.weights or bad:
                raise ConfigError(
                    "weights must give each variant a positive share"
                    + (f"; {', '.join(map(repr, bad))} has none" if bad else ""),
                    hint=Hint("weights", "control=0.5,treatment=0.5"),
                )
            # read-only, so the settings stay a value
            object.__setattr__(self, "weights", MappingProxyType(dict(self.weights)))

    def with_options(self, **changes: Any) -> AnalysisSettings:
        """A copy with ``changes`` applied (and checked), e.g. another window."""
        return replace(self, **changes)


DEFAULT_SETTINGS = AnalysisSettings()
