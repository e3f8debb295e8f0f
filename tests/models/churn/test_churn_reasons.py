"""Reasons: the strongest SHAP topics, as sentences with the customer's own numbers."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from churn_shop import Shop

from liucun.core import ConfigError
from liucun.models.churn import TOPICS, churn_reasons
from liucun.models.churn._reasons import Values, _topics

_TOPIC = {t.code: t for t in TOPICS}


def _say(code: str, **values: float) -> str:
    """The sentence of one topic for one customer with these feature values."""
    frame = pd.DataFrame({k: [v] for k, v in values.items()})
    return str(_TOPIC[code].text(Values(frame, 90))[0])


def test_templates_quote_the_customers_values() -> None:
    assert (
        _say("recency", recency_days=94.2, gap_ratio=94.2 / 30, median_gap_days=30)
        == "no order for 94 days — 3.1× this customer's usual gap (30 days)"
    )
    assert _say("recency", recency_days=40, gap_ratio=0.5, median_gap_days=80) == (
        "no order for 40 days"
    )
    assert _say("recency", recency_days=40, gap_ratio=np.nan) == "no order for 40 days"
    assert (
        _say("late_deliveries", late_deliveries_90d=2, late_deliveries=3)
        == "2 late deliveries in the last 90 days"
    )
    assert (
        _say("late_deliveries", late_deliveries_90d=0, late_deliveries=1)
        == "1 late delivery so far"
    )
    assert (
        _say("messages", last_messages=6, last_messages_opened=0, messages_sent_90d=6)
        == "opened none of the last 6 messages"
    )
    assert (
        _say("tickets", open_tickets=0, max_resolution_hours=96.4)
        == "a support ticket took 96 hours to resolve"
    )
    assert _say("refunds", refunds=2, refund_share=0.35) == "2 refunds (35% of spend)"
    assert _say("nps", last_nps=4) == "last NPS answer was 4 out of 10"
    assert (
        _say("order_trend", orders_30d=0, orders_31_90d=1, orders_91_180d=4)
        == "1 order in the last 90 days, down from 4 in the 90 days before"
    )
    assert (
        _say("btyd", p_alive=0.234, expected_orders=0.26)
        == "buying pattern: 23% chance of still being active, 0.3 orders expected in 90 days"
    )


def test_a_topic_speaks_only_when_its_sentence_is_true() -> None:
    frame = pd.DataFrame(
        {
            "late_deliveries": [0, 2],
            "refunds": [0, 1],
            "last_nps": [9, 6],  # a promoter's score is no reason; a detractor's is
            "last_messages": [6, 6],
            "last_messages_opened": [5, 1],
            "messages_sent_90d": [6, 6],
            "frequency": [5, 1],  # a long history is no reason; one order is
        }
    )
    v = Values(frame, 90)
    for code in ("late_deliveries", "refunds", "nps", "messages", "value"):
        applies = _TOPIC[code].applies
        assert applies is not None
        assert applies(v).tolist() == [False, True], code


@pytest.fixture(scope="module")
def explained(shop: Shop) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = shop.data.validation.reset_index(drop=True)
    return rows, churn_reasons(shop.model, rows, top_k=3)


def test_reasons_are_the_top_topics_by_summed_shap(shop: Shop, explained) -> None:  # type: ignore[no-untyped-def]
    """The codes are the topics with the largest summed contributions above the threshold
    (recomputed row by row here), strongest first."""
    rows, got = explained
    model = shop.model
    contrib = model.booster_.predict(
        model._matrix(rows), num_iteration=model.best_iteration_, pred_contrib=True
    )[:, :-1]
    topics, owner = _topics(model)
    values = Values(rows, 90)
    ok = np.column_stack(
        [np.ones(len(rows), bool) if t.applies is None else t.applies(values) for t in topics]
    )
    checked = 0
    for i in range(0, len(rows), 7):
        sums = {t.code: contrib[i, owner == k].sum() for k, t in enumerate(topics) if ok[i, k]}
        want = [c for c, s in sorted(sums.items(), key=lambda kv: -kv[1]) if s > 0.05][:3]
        assert list(got["reason_codes"].iloc[i]) == want
        checked += bool(want)
    assert checked > 50
    assert got["user_id"].tolist() == rows["user_id"].tolist()
    counts = got["reasons"].map(len)
    assert counts.max() == 3 and counts.min() == 0


def test_reason_sentences_carry_the_right_numbers(explained) -> None:  # type: ignore[no-untyped-def]
    rows, got = explained
    seen = set()
    for i in range(len(rows)):
        row = rows.iloc[i]
        for code, text in zip(got["reason_codes"].iloc[i], got["reasons"].iloc[i], strict=True):
            seen.add(code)
            if code == "recency":
                assert text.startswith(f"no order for {round(row.recency_days)} days")
            elif code == "visits":
                days = round(row.days_since_last_visit)
                assert text.startswith(f"last visit {days} days ago") or text == (
                    "no visit on record"
                )
            elif code == "messages" and text.startswith("opened"):
                n, k = re.match(r"opened (\w+) of the last (\d+) messages", text).groups()  # type: ignore[union-attr]
                assert (0 if n == "none" else int(n)) == row.last_messages_opened
                assert int(k) == row.last_messages
            elif code == "value":
                assert text.startswith(f"{int(row.frequency)} order")
    assert {"recency", "visits", "messages", "value"} <= seen


def test_batches_and_top_k(shop: Shop, explained) -> None:  # type: ignore[no-untyped-def]
    rows, got = explained
    small = churn_reasons(shop.model, rows, top_k=3, batch_size=97, num_threads=2)
    pd.testing.assert_frame_equal(small, got)
    one = churn_reasons(shop.model, rows.drop(columns="user_id"), top_k=1)
    assert list(one.columns) == ["reasons", "reason_codes"]
    firsts = [list(r[:1]) for r in got["reason_codes"]]
    assert [list(r) for r in one["reason_codes"]] == firsts
    with pytest.raises(ConfigError, match="num_threads"):
        churn_reasons(shop.model, rows, num_threads=-1)
    with pytest.raises(ConfigError, match="top_k"):
        churn_reasons(shop.model, rows, top_k=0)
    assert len(churn_reasons(shop.model, rows.head(0))) == 0
