"""A model card's warnings (e.g. a baseline that ranks worse than random, issue 10 item 10)
are sentences in the report's risk section, not only in card.json."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

from liucun.models import CardWarning
from liucun.reports._render import ReportMeta, Section, render
from liucun.reports._risk import _quality_card

SENTENCE = "BG/NBD ranks worse than random on held-out customers (AUC 0.35 vs 0.5)"


_CARD = SimpleNamespace(
    metrics={"comparison": [{"scorer": "btyd_p_dead", "role": "baseline", "auc": 0.35}]},
    warnings=[CardWarning(code="worse_than_random", text=SENTENCE, measured=0.35)],
)


def test_card_warnings_are_shown_in_the_risk_section() -> None:
    sec = Section(key="risk", title="Churn risk")
    _quality_card(sec, _CARD)
    assert sec.warnings == [SENTENCE]
    meta = ReportMeta(
        workspace="ws",
        as_of=datetime(2024, 1, 1, tzinfo=UTC),
        data_start=None,
        timezone="UTC",
        backend="duckdb",
        generated_at=datetime(2024, 1, 1, tzinfo=UTC),
        version="0",
    )
    html = render(meta, [], [sec])
    assert f'<p class="warning">{SENTENCE}</p>' in html
