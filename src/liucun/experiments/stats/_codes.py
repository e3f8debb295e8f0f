"""Reason codes: why a result is partly or wholly undefined (the one list, as in gbstats).

Every result of the engine carries a ``reason``. ``"ok"`` means every field is defined;
any other code says which fields are ``None`` (scalar inputs) or ``NaN`` (array inputs)
and why. Codes are checked in the order below; the first that applies wins.
"""

from __future__ import annotations

from typing import Final, Literal

Reason = Literal[
    "ok",
    "empty_arm",
    "too_few_units",
    "zero_denominator",
    "zero_variance",
    "zero_control_mean",
    "no_units",
    "unreachable",
    "unbounded_interval",
]

#: Every field is defined.
OK: Final = "ok"
#: An arm has no units: no mean, no estimate.
EMPTY_ARM: Final = "empty_arm"
#: An arm has one unit: means and the estimate are defined, the variance is not.
TOO_FEW_UNITS: Final = "too_few_units"
#: A ratio metric's denominator mean is zero in an arm: the ratio is undefined.
ZERO_DENOMINATOR: Final = "zero_denominator"
#: Both arms have zero variance: the estimate is defined, intervals and p-values are not.
ZERO_VARIANCE: Final = "zero_variance"
#: Relative lift asked for while the control mean is zero (or below 10⁻¹² of the
#: difference or of the control's standard deviation): nothing is defined.
ZERO_CONTROL_MEAN: Final = "zero_control_mean"
#: Sample-ratio check over zero units: no statistic, no p-value.
NO_UNITS: Final = "no_units"
#: Power analysis: the requested power cannot be reached (e.g. an effect beyond 100 %).
UNREACHABLE: Final = "unreachable"
#: A ratio's denominator is not significantly different from zero: Fieller's interval
#: is unbounded (the estimate is defined, the interval is not).
UNBOUNDED_INTERVAL: Final = "unbounded_interval"

REASONS: Final[tuple[Reason, ...]] = (
    OK,
    EMPTY_ARM,
    TOO_FEW_UNITS,
    ZERO_DENOMINATOR,
    ZERO_VARIANCE,
    ZERO_CONTROL_MEAN,
    NO_UNITS,
    UNREACHABLE,
    UNBOUNDED_INTERVAL,
)
