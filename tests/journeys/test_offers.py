"""Offer choice by expected incremental value from a saved uplift model, worked by hand:
effect (orders) × expected order value × margin − (face value + cost); a percent coupon's
face is its percent of the order value; per-offer models; none when nothing is positive;
the first offer with basis no_uplift_model when no model is saved."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from liucun import loyalty
from liucun.core import ConfigError, SimulatedClock
from liucun.ingest import ingest_tables
from liucun.journeys._offers import choose_offers, offer_choices
from liucun.models._registry import ModelDraft, save_model
from liucun.models.uplift import FEATURES, UPLIFT_MODEL
from liucun.workspace import Workspace, init_workspace

T0 = datetime(2026, 3, 2, 2, tzinfo=UTC)
PROGRAM = """
name: test
currency: CNY
coupons:
  - {id: ten, kind: value, amount: 10}
  - {id: pct, kind: percent, amount: 15}
  - {id: big, kind: value, amount: 40}
"""


class PerOrder:
    """A stand-in uplift learner: ``k`` extra orders per past order."""

    def __init__(self, k: float) -> None:
        self.k = k

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        assert list(x.columns) == list(FEATURES)
        return self.k * x["frequency"].astype(float).to_numpy()


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    with init_workspace(tmp_path / "ws", clock=SimulatedClock(T0)) as w:
        path = tmp_path / "program.yaml"
        path.write_text(PROGRAM, encoding="utf-8")
        loyalty.apply_program(w, path)
        orders = [("u1", 80.0, 1), ("u1", 120.0, 5), ("u2", 50.0, 3), ("u4", 30.0, 7)]
        ingest_tables(
            w.warehouse,
            events=pa.table(
                {
                    "event_id": [f"o{i}" for i in range(len(orders))],
                    "user_id": [u for u, _, _ in orders],
                    "event_type": ["order"] * len(orders),
                    "ts": pa.array(
                        [datetime(2026, 2, d, tzinfo=UTC) for _, _, d in orders],
                        type=pa.timestamp("us", tz="UTC"),
                    ),
                    "revenue": [r for _, r, _ in orders],
                    "currency": ["CNY"] * len(orders),
                }
            ),
            options=None,
        )
        yield w


def save(ws: Workspace, k: float) -> str:
    draft = ModelDraft(
        name=UPLIFT_MODEL,
        as_of=T0,
        data_start=None,
        data_end=T0,
        horizon_days=30,
        customers=3,
        features=list(FEATURES),
        metrics={"outcome": "orders", "experiment": "cmp"},
    )
    return save_model(ws.models_dir, {"model": PerOrder(k)}, draft, now=T0).version


def test_no_model_falls_back_to_the_first_offer(ws: Workspace) -> None:
    got = offer_choices(ws, ["u1", "u2"], ["pct", "ten"], margin=0.5, cost=1.0)
    assert [(c.offer, c.basis) for c in got] == [("pct", "no_uplift_model")] * 2


def test_highest_expected_incremental_value_per_customer(ws: Workspace) -> None:
    save(ws, 0.5)
    got = {
        c.user_id: c
        for c in offer_choices(ws, ["u1", "u2", "u3"], ["ten", "pct", "big"], margin=0.5, cost=1.0)
    }
    # u1: 2 orders, mean 100 → 1.0 extra order × 100 × 0.5 = 50
    assert got["u1"].values == pytest.approx({"ten": 39.0, "pct": 34.0, "big": 9.0})
    assert got["u1"].offer == "ten" and got["u1"].basis == "uplift"
    # u2: 1 order of 50 → 0.5 × 50 × 0.5 = 12.5; pct costs 7.5 + 1, ten 10 + 1
    assert got["u2"].values == pytest.approx({"ten": 1.5, "pct": 4.0, "big": -28.5})
    assert got["u2"].offer == "pct"
    # u3 never ordered: no effect, nothing pays
    assert got["u3"].offer is None and got["u3"].basis == "no_positive_offer"
    assert choose_offers(ws, ["u1", "u2", "u3"], ["ten", "pct", "big"], margin=0.5, cost=1.0) == {
        "u1": "ten",
        "u2": "pct",
        "u3": None,
    }


def test_per_offer_models(ws: Workspace) -> None:
    save(ws, 0.5)  # v1
    v2 = save(ws, 2.0)
    got = offer_choices(ws, ["u1"], ["ten", "big"], margin=0.5, cost=1.0, models={"big": v2})[0]
    # big under v2: 4 extra orders × 100 × 0.5 − 41 = 159; ten is not mapped, so it uses
    # the latest model (v2 too): 4 × 100 × 0.5 − 11 = 189
    assert got.values == pytest.approx({"ten": 189.0, "big": 159.0})
    got = offer_choices(ws, ["u1"], ["ten", "big"], margin=0.5, cost=1.0, models={"ten": "v1"})[0]
    assert got.values == pytest.approx({"ten": 39.0, "big": 159.0}) and got.offer == "big"


def test_unknown_offer_is_refused(ws: Workspace) -> None:
    save(ws, 0.5)
    with pytest.raises(ConfigError, match="not coupons of the loyalty program"):
        choose_offers(ws, ["u1"], ["nope"], margin=0.3, cost=0.0)


def test_on_the_simulated_shop_with_a_trained_uplift_model(
    shop_workspace: Path, tmp_path: Path
) -> None:
    import shutil

    import pyarrow.parquet as pq

    from liucun.experiments import log_exposures
    from liucun.models.uplift import train_uplift
    from liucun.simulate import campaign_exposures
    from liucun.workspace import open_workspace

    target = tmp_path / "shop"
    shutil.copytree(shop_workspace, target)
    truth = pq.read_table(shop_workspace.parent / "sim" / "truth.parquet")
    with open_workspace(target) as probe:
        end = probe.data_end()
    with open_workspace(target, clock=SimulatedClock(end)) as w:
        log = campaign_exposures(truth)
        log_exposures(w.state, log.drop(["ts"]), ts=log["ts"], clock=w.clock)
        train_uplift(w, log["experiment"][0].as_py(), random_state=0, num_threads=1)
        loyalty.apply_program(w, Path(__file__).parents[2] / "examples/loyalty/program.yaml")
        ev = w.events().filter(lambda t: t.event_type == "order").to_pandas()
        aov = ev.groupby("user_id").revenue.mean()
        users = [*sorted(aov.index)[:400], "never-bought"]
        offers = ["recall_10", "birthday_coupon"]  # 10 off; 15 % off
        got = offer_choices(w, users, offers, margin=0.3, cost=0.5)
    assert [c.user_id for c in got] == users
    for c in got[:-1]:
        assert c.values is not None and c.basis in ("uplift", "no_positive_offer")
        # one model, one effect: the offers differ by their face values only
        assert c.values["recall_10"] - c.values["birthday_coupon"] == pytest.approx(
            0.15 * aov[c.user_id] - 10, abs=1e-6
        )
        best = max(offers, key=lambda o: c.values[o])
        assert c.offer == (best if c.values[best] > 0 else None)
    chosen = [c.offer for c in got]
    assert chosen.count(None) > 0 and len(set(chosen) - {None}) >= 1
    # a customer with no orders is valued at the mean order value of the others
    stranger = got[-1].values
    assert stranger["recall_10"] - stranger["birthday_coupon"] == pytest.approx(
        0.15 * aov[users[:-1]].mean() - 10, abs=1e-6
    )
