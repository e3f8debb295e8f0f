"""Fixtures for the BTYD tests: the CDNOW calibration summary and the donations histogram."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from liucun.datasets import cdnow_rft, load_cdnow, load_donations
from liucun.models.btyd import BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel


@pytest.fixture(scope="session")
def cdnow() -> pd.DataFrame:
    """CDNOW 39-week calibration summary, indexed by customer_id."""
    return cdnow_rft(load_cdnow())


@pytest.fixture(scope="session")
def cdnow_xtT(cdnow: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frequency, recency and T as float arrays (``T`` read by key: ``df.T`` transposes)."""
    return (
        cdnow["frequency"].to_numpy(float),
        cdnow["recency"].to_numpy(float),
        cdnow["T"].to_numpy(float),
    )


@pytest.fixture(scope="session")
def donations() -> pd.DataFrame:
    """Fader, Hardie & Shang (2010) donations histogram."""
    return load_donations()


@pytest.fixture(scope="session")
def bgnbd_cdnow(cdnow_xtT) -> BetaGeoModel:  # type: ignore[no-untyped-def]
    return BetaGeoModel().fit(*cdnow_xtT)


@pytest.fixture(scope="session")
def mbgnbd_cdnow(cdnow_xtT) -> ModifiedBetaGeoModel:  # type: ignore[no-untyped-def]
    return ModifiedBetaGeoModel().fit(*cdnow_xtT)


@pytest.fixture(scope="session")
def pareto_cdnow(cdnow_xtT) -> ParetoNBDModel:  # type: ignore[no-untyped-def]
    return ParetoNBDModel().fit(*cdnow_xtT)
