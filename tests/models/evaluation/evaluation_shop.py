"""The simulated shop the evaluation tests share (its fixture is in conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import ibis.expr.types as ir
import pandas as pd

from liucun.simulate import SimulationResult


@dataclass(frozen=True)
class LoadedShop:
    sim: SimulationResult
    events: ir.Table  # resolved events
    truth: pd.DataFrame  # simulated_truth(...), keyed by the warehouse's canonical ids

    @property
    def last_day(self) -> date:
        return self.sim.end - timedelta(days=1)
