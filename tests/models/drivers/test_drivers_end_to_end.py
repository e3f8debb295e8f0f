"""Driver analysis on a simulated shop whose true drivers are known.

The simulator doubles a customer's dropout chance after a late delivery
(``late_dropout_mult`` = 2 for b2c) and scales dropout by acquisition channel (social
1.35, organic 0.85: ``liucun.simulate`` presets). The b2c customers buy about every 80
days (purchase rate ~ Gamma(0.9, 75) per day), so a 90-day silence is often just a slow
buyer between orders; G = 180 days separates churn from slow buying far better.
"""

from __future__ import annotations

import ibis.expr.types as ir

from liucun.models.drivers import churn_drivers


def test_late_deliveries_and_social_acquisition_raise_the_churn_hazard(
    driver_shop: tuple[ir.Table, ir.Table],
) -> None:
    events, users = driver_shop
    got = churn_drivers(events, users, gap_days=180)
    table = got.hazard_ratios.set_index("term")
    assert 3500 < got.customers < 4500  # 3,948
    assert 0.7 < got.churned / got.customers < 0.9  # 0.81

    late = table.loc["late_delivery_share"]
    # per 10 percentage points: 1.037 [1.020, 1.054] (seeds 3 and 4: 1.021 [1.004, 1.037],
    # 1.037 [1.021, 1.054])
    assert late["ci_low"] > 1.0
    assert 1.01 < late["hazard_ratio"] < 1.08
    assert late["sentence"].startswith(
        "A late-delivery share 10 percentage points higher raises the churn hazard by"
    )
    social = table.loc["acquisition_channel[social]"]
    assert social["reference"] == "organic"
    assert social["ci_low"] > 1.1  # 1.33 [1.20, 1.47]
    assert "customer type was left out: every customer has the same value (b2c)" in got.notes
