"""What the three continuous-time models share (RFTModel)."""

from __future__ import annotations

import numpy as np
import pytest

from liucun.core import InvalidInput
from liucun.datasets import cdnow_rft, load_cdnow
from liucun.models.btyd import BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel

MODELS = [BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel]


@pytest.mark.parametrize("cls", MODELS)
def test_log_likelihood_at_the_fit_equals_the_fitted_value(cls) -> None:  # type: ignore[no-untyped-def]
    rft = cdnow_rft(load_cdnow())
    model = cls().fit(rft.frequency, rft.recency, rft["T"])
    ll = model.log_likelihood(rft.frequency, rft.recency, rft["T"])
    assert ll == pytest.approx(model.log_likelihood_, rel=1e-10)


@pytest.mark.parametrize("cls", MODELS)
def test_p_transactions_checks_its_arguments(cls) -> None:  # type: ignore[no-untyped-def]
    names = cls.param_names
    model = cls.from_params(dict(zip(names, [0.5, 5.0, 0.8, 2.5], strict=True)))
    assert np.all(model.p_transactions([0, 1, 2], 10.0) > 0)
    with pytest.raises(InvalidInput, match="whole numbers"):
        model.p_transactions(1.5, 10.0)
    with pytest.raises(InvalidInput, match="non-negative"):
        model.p_transactions(1, -1.0)
