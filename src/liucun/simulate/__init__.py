"""A synthetic e-commerce platform with ground truth (b2c, b2b wholesale, cross-border).

:func:`simulate_shop` writes ``users.parquet``, ``events/part-*.parquet`` (canonical
columns) and ``truth.parquet`` (each customer's latent parameters, state and true
expectations), so every metric and model in liucun can be checked against the truth.
"""

from liucun.simulate._engine import SimulationResult, simulate_shop
from liucun.simulate._exposures import campaign_exposures
from liucun.simulate._presets import PRESETS, Preset
from liucun.simulate._truth import TRUTH_SCHEMA

__all__ = [
    "PRESETS",
    "TRUTH_SCHEMA",
    "Preset",
    "SimulationResult",
    "campaign_exposures",
    "simulate_shop",
]
