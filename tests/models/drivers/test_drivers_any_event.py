"""Cox drivers on a table that is not about churn: the sentences name the event's hazard,
a binary covariate reads "with vs without", and every term has a short readable label.

The data are a known Cox model (time to a customer's second order, exponential baseline,
true log hazard ratios below), so the direction of every sentence is known in advance.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from liucun.core import InvalidInput
from liucun.models.drivers import DEFAULT_COVARIATES, Covariate, cox_drivers, sentence

#: True log hazard ratios of a second order: a coupon speeds it up, the north region
#: slows it down, a doubling of the first order's value speeds it up.
TRUE = {"coupon": 0.6, "region[north]": -0.5, "first_order_value_log2_rel": 0.3}


def _second_orders(seed: int = 3, n: int = 4000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    coupon = rng.random(n) < 0.4
    region = rng.choice(["south", "north"], n, p=[0.6, 0.4])
    value = rng.normal(0, 1, n)
    eta = (
        TRUE["coupon"] * coupon
        + TRUE["region[north]"] * (region == "north")
        + TRUE["first_order_value_log2_rel"] * value
    )
    t = rng.exponential(1 / (0.02 * np.exp(eta)))
    c = rng.uniform(0, 120, n)
    return pd.DataFrame(
        {
            "days_to_second_order": np.ceil(np.minimum(t, c)),
            "second_order": t <= c,
            "has_coupon": coupon,
            "region": region,
            "first_order_value_log2_rel": value,
        }
    )


def _fit(**kwargs: object) -> pd.DataFrame:
    covariates = [
        "has_coupon",
        "region",
        next(c for c in DEFAULT_COVARIATES if c.column == "first_order_value_log2_rel"),
    ]
    got = cox_drivers(
        _second_orders(),
        covariates,
        duration="days_to_second_order",
        event="second_order",
        **kwargs,  # type: ignore[arg-type]
    )
    return got.hazard_ratios.set_index("term")


def test_sentences_name_the_event_and_never_churn() -> None:
    table = _fit(event_name="a second order")
    for text in table.sentence:
        assert "churn" not in text
        assert "hazard of a second order" in text
    hr, low, high = table.loc["first_order_value_log2_rel", ["hazard_ratio", "ci_low", "ci_high"]]
    assert low > 1  # the true effect is +0.3 per doubling
    assert table.at["first_order_value_log2_rel", "sentence"] == (
        "A first order twice as large (relative to the median in its currency) raises the "
        f"hazard of a second order by {100 * (hr - 1):.0f} % "
        f"[{100 * (low - 1):.0f} %, {100 * (high - 1):.0f} %]"
    )


def test_without_a_name_the_sentence_says_the_hazard_of_the_event() -> None:
    table = _fit()
    for text in table.sentence:
        assert "churn" not in text
        assert "hazard of the event (second_order)" in text


def test_a_binary_covariate_reads_with_vs_without() -> None:
    table = _fit(event_name="a second order")
    hr, low, high = table.loc["has_coupon", ["hazard_ratio", "ci_low", "ci_high"]]
    assert low > 1  # the true effect is exp(0.6) ≈ 1.8
    assert table.at["has_coupon", "sentence"] == (
        f"Customers with coupon vs without have a {100 * (hr - 1):.0f} % higher hazard of "
        f"a second order [{100 * (low - 1):.0f} %, {100 * (high - 1):.0f} %]"
    )


def test_every_term_has_a_short_label() -> None:
    table = _fit()
    assert table.at["first_order_value_log2_rel", "label"] == "first order value (2× median)"
    assert table.at["region[north]", "label"] == "region: north"
    assert table.at["has_coupon", "label"] == "coupon (with vs without)"
    custom = cox_drivers(
        _second_orders(),
        [Covariate("first_order_value_log2_rel", "a doubling", per=2.0)],
        duration="days_to_second_order",
        event="second_order",
    ).hazard_ratios
    assert list(custom.label) == ["first order value log2 rel (+2)"]


def test_default_drivers_all_have_labels_without_underscores() -> None:
    for cov in DEFAULT_COVARIATES:
        if cov.kind != "categorical":
            assert cov.label and "_" not in cov.label, cov


def test_flag_sentence_wording_for_churn() -> None:
    assert sentence("a coupon on the first order", 0.8, 0.7, 0.95, 0.01, flag=True) == (
        "Customers with a coupon on the first order vs without have a 20 % lower churn "
        "hazard [5.0 %, 30 %]"
    )
    assert sentence("a coupon", 1.03, 0.95, 1.12, 0.41, flag=True) == (
        "Customers with a coupon vs without show no clear difference in the churn hazard "
        "(3.0 % [-5.0 %, 12 %], p = 0.41)"
    )
    assert sentence("A late delivery", 1.38, 1.25, 1.52, 0.001, event_name="a return") == (
        "A late delivery raises the hazard of a return by 38 % [25 %, 52 %]"
    )


def test_no_event_at_all_is_an_error_naming_the_column() -> None:
    data = _second_orders().assign(second_order=False)
    with pytest.raises(InvalidInput, match=r"second_order is never true.*'second_order' column"):
        cox_drivers(data, ["region"], duration="days_to_second_order", event="second_order")
