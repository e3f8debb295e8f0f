"""The statistics engine: pure functions over sufficient statistics (after gbstats).

Inputs are per-arm sufficient statistics (:class:`MeanStat`, :class:`ProportionStat`,
:class:`RatioStat`, :class:`CupedStat`), computed by the warehouse; outputs are frozen
dataclasses. Every field may be a numpy array, so a grid of experiments × metrics is
analysed in one call. Expected edge cases (an empty arm, one unit, zero variance, a zero
control mean for relative lift) give a result whose ``reason`` is one of the codes
below, with the undefined fields ``None`` (scalars) or ``NaN`` (arrays); bugs raise.

Formulas, defaults and references: docs/experiments.md.
"""

from liucun.experiments.stats._bayes import BayesianResult, NormalPrior, bayesian_test
from liucun.experiments.stats._codes import (
    EMPTY_ARM,
    NO_UNITS,
    OK,
    REASONS,
    TOO_FEW_UNITS,
    UNBOUNDED_INTERVAL,
    UNREACHABLE,
    ZERO_CONTROL_MEAN,
    ZERO_DENOMINATOR,
    ZERO_VARIANCE,
    Reason,
)
from liucun.experiments.stats._corrections import (
    Correction,
    CorrectionResult,
    adjust_p_values,
    benjamini_hochberg,
    holm,
)
from liucun.experiments.stats._frequentist import (
    FrequentistResult,
    TestKind,
    cuped_theta,
    cuped_ttest,
    proportion_test,
    ratio_test,
    welch_ttest,
)
from liucun.experiments.stats._inputs import (
    AnyStat,
    CupedStat,
    MeanStat,
    ProportionStat,
    RatioStat,
    Value,
)
from liucun.experiments.stats._power import (
    PowerMethod,
    PowerResult,
    mde_means,
    mde_proportions,
    power_means,
    power_proportions,
    sample_size_means,
    sample_size_proportions,
)
from liucun.experiments.stats._sequential import DEFAULT_TUNING, sequential_test
from liucun.experiments.stats._srm import SRM_THRESHOLD, SRMResult, srm_test

__all__ = [
    "DEFAULT_TUNING",
    "EMPTY_ARM",
    "NO_UNITS",
    "OK",
    "REASONS",
    "SRM_THRESHOLD",
    "TOO_FEW_UNITS",
    "UNBOUNDED_INTERVAL",
    "UNREACHABLE",
    "ZERO_CONTROL_MEAN",
    "ZERO_DENOMINATOR",
    "ZERO_VARIANCE",
    "AnyStat",
    "BayesianResult",
    "Correction",
    "CorrectionResult",
    "CupedStat",
    "FrequentistResult",
    "MeanStat",
    "NormalPrior",
    "PowerMethod",
    "PowerResult",
    "ProportionStat",
    "RatioStat",
    "Reason",
    "SRMResult",
    "TestKind",
    "Value",
    "adjust_p_values",
    "bayesian_test",
    "benjamini_hochberg",
    "cuped_theta",
    "cuped_ttest",
    "holm",
    "mde_means",
    "mde_proportions",
    "power_means",
    "power_proportions",
    "proportion_test",
    "ratio_test",
    "sample_size_means",
    "sample_size_proportions",
    "sequential_test",
    "srm_test",
    "welch_ttest",
]
