"""Buy-till-you-die models: BG/NBD, MBG/NBD, Pareto/NBD, BG/BB and Gamma-Gamma.

Every model derives from :class:`LikelihoodModel` (scikit-learn's contract, lifelines'
structure): ``fit`` returns the model, fitted state ends in ``_`` and ``summary()``
returns a DataFrame. A failed fit raises :class:`ConvergenceError`; a degraded one warns
with a :class:`FitWarning` (:class:`NotConvergedWarning` when the optimiser did not report
convergence, :class:`NoStandardErrorsWarning` when the Hessian is singular) and says so in
``converged_`` and ``has_standard_errors_``. Using a model before ``fit`` raises
:class:`liucun.core.NotFittedError`.
"""

from liucun.models.btyd._base import (
    PARAM_LOWER,
    PARAM_UPPER,
    ConvergenceError,
    FitWarning,
    LikelihoodModel,
    NoStandardErrorsWarning,
    NotConvergedWarning,
    RFTModel,
)
from liucun.models.btyd._bgbb import BetaGeoBetaBinomModel
from liucun.models.btyd._bgnbd import BetaGeoModel
from liucun.models.btyd._fallback import PENALIZERS, fit_with_penalizers
from liucun.models.btyd._gamma_gamma import GammaGammaModel, TransactionModel
from liucun.models.btyd._mbgnbd import ModifiedBetaGeoModel
from liucun.models.btyd._pareto import ParetoNBDModel

__all__ = [
    "PARAM_LOWER",
    "PARAM_UPPER",
    "PENALIZERS",
    "BetaGeoBetaBinomModel",
    "BetaGeoModel",
    "ConvergenceError",
    "FitWarning",
    "GammaGammaModel",
    "LikelihoodModel",
    "ModifiedBetaGeoModel",
    "NoStandardErrorsWarning",
    "NotConvergedWarning",
    "ParetoNBDModel",
    "RFTModel",
    "TransactionModel",
    "fit_with_penalizers",
]
