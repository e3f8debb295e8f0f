"""A synthetic e-commerce platform with ground truth (b2c, b2b wholesale, cross-border).

:func:`simulate_shop` writes ``users.parquet``, ``events/part-*.parquet`` (canonical
columns) and ``truth.parquet`` (each customer's latent parameters, state and true
expectations), so every metric and model in liucun can be checked against the truth.
:func:`responsive_world` continues the shop past its end, its customers responding to
what journeys send (docs/simulator.md, "The responding world").
"""

from liucun.simulate._engine import SimulationResult, simulate_shop
from liucun.simulate._exposures import campaign_exposures
from liucun.simulate._presets import PRESETS, Preset
from liucun.simulate._truth import TRUTH_SCHEMA
from liucun.simulate._world import (
    STRENGTHS,
    WORLD_TRUTH_SCHEMA,
    ResponsiveWorld,
    load_world,
    responsive_world,
    shop_end,
)

__all__ = [
    "PRESETS",
    "STRENGTHS",
    "TRUTH_SCHEMA",
    "WORLD_TRUTH_SCHEMA",
    "Preset",
    "ResponsiveWorld",
    "SimulationResult",
    "campaign_exposures",
    "load_world",
    "responsive_world",
    "shop_end",
    "simulate_shop",
]
