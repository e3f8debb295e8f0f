"""Uplift modelling: who responds to a retention action, and whom to treat.

Learners (:class:`TLearner`, :class:`XLearner`, :class:`DRLearner`) estimate each
customer's treatment effect from a randomized past campaign; :func:`evaluate_uplift`
scores a ranking (Qini curve, AUUC with random = 0, uplift at top-k, recovery of true
effects on simulated data); :func:`calibrate_uplift` sizes predicted effects on
randomized data the model did not see (out-of-fold: :func:`cross_fit_predict`);
:func:`plan_policy` picks whom to treat for the most incremental profit within a
budget, and :func:`compare_policies` values that choice against treating everyone, no
one or a churn-risk top-N on held-out randomized data, and :func:`targeting_verdict` says
whether uplift beat churn risk. :func:`campaign_training_frame`
builds the training data from the warehouse, and :func:`fit_campaign_uplift` runs frame,
split, fit and held-out evaluation in one call.
"""

from liucun.models.uplift._calibration import (
    UpliftCalibration,
    calibrate_uplift,
    cross_fit_predict,
)
from liucun.models.uplift._evaluation import (
    NO_CONTROL,
    NO_TREATED,
    QiniCurve,
    TargetingBasis,
    TargetingVerdict,
    UpliftAtK,
    UpliftEvaluation,
    auuc,
    effect_curve,
    evaluate_uplift,
    ipw_difference,
    qini_curve,
    ranking_auuc,
    targeting_verdict,
    uplift_at_k,
)
from liucun.models.uplift._features import (
    CATEGORICAL_FEATURES,
    FEATURES,
    NUMERIC_FEATURES,
    assignments_from_exposures,
    assignments_from_truth,
    campaign_training_frame,
    pre_campaign_features,
)
from liucun.models.uplift._learners import (
    LEARNERS,
    OUTCOMES,
    DRLearner,
    TLearner,
    UpliftLearner,
    XLearner,
    make_learner,
)
from liucun.models.uplift._pipeline import CampaignUplift, fit_campaign_uplift
from liucun.models.uplift._policy import (
    COUPON_BASES,
    NO_BUDGET,
    NOBODY_PROFITABLE,
    CampaignEconomics,
    Policy,
    PolicyValue,
    compare_policies,
    plan_policy,
    policy_value,
    top_n,
)
from liucun.models.uplift._workflow import (
    UPLIFT_MODEL,
    TargetingComparison,
    compare_targeting,
    plan_next_campaign,
    train_uplift,
)

__all__ = [
    "CATEGORICAL_FEATURES",
    "COUPON_BASES",
    "FEATURES",
    "LEARNERS",
    "NOBODY_PROFITABLE",
    "NO_BUDGET",
    "NO_CONTROL",
    "NO_TREATED",
    "NUMERIC_FEATURES",
    "OUTCOMES",
    "UPLIFT_MODEL",
    "CampaignEconomics",
    "CampaignUplift",
    "DRLearner",
    "Policy",
    "PolicyValue",
    "QiniCurve",
    "TLearner",
    "TargetingBasis",
    "TargetingComparison",
    "TargetingVerdict",
    "UpliftAtK",
    "UpliftCalibration",
    "UpliftEvaluation",
    "UpliftLearner",
    "XLearner",
    "assignments_from_exposures",
    "assignments_from_truth",
    "auuc",
    "calibrate_uplift",
    "campaign_training_frame",
    "compare_policies",
    "compare_targeting",
    "cross_fit_predict",
    "effect_curve",
    "evaluate_uplift",
    "fit_campaign_uplift",
    "ipw_difference",
    "make_learner",
    "plan_next_campaign",
    "plan_policy",
    "policy_value",
    "pre_campaign_features",
    "qini_curve",
    "ranking_auuc",
    "targeting_verdict",
    "top_n",
    "train_uplift",
    "uplift_at_k",
]
