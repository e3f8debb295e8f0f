"""The segment and stage explorer's data: customers per RFM segment and per lifecycle
stage, and the customers inside one, from the same library expressions the report's
RFM and stage sections use (:func:`liucun.segments.rfm`,
:func:`liucun.segments.lifecycle_stages`), with their latest churn risk when scored."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ibis
import pandas as pd

from liucun.core import InvalidInput
from liucun.reports import ReportContext
from liucun.segments import SEGMENTS, STAGES, lifecycle_stages, rfm

#: Customers listed per page of a drill-down.
PAGE = 50


@dataclass(frozen=True)
class Members:
    """One page of the customers of a segment or stage."""

    kind: str
    name: str
    total: int
    offset: int
    rows: list[dict[str, Any]]

    @property
    def next_offset(self) -> int | None:
        end = self.offset + len(self.rows)
        return end if end < self.total else None


def group_sizes(ctx: ReportContext) -> dict[str, list[tuple[str, int]]]:
    """Customers per RFM segment and per stage, in the library's order of each."""
    scored = rfm(ctx.events, as_of=ctx.as_of)
    seg = scored.group_by("rfm_segment").aggregate(n=scored.count()).to_pandas()
    stages = lifecycle_stages(ctx.events, as_of=ctx.as_of, users=ctx.users)
    st = stages.group_by("stage").aggregate(n=stages.count()).to_pandas()
    seg_n = dict(zip(seg.rfm_segment, seg.n, strict=True))
    st_n = dict(zip(st.stage, st.n, strict=True))
    return {
        "segment": [(s, int(seg_n[s])) for s in SEGMENTS if s in seg_n],
        "stage": [(s, int(st_n.get(s, 0))) for s in STAGES],
    }


def members(ctx: ReportContext, *, kind: str, name: str, offset: int = 0) -> Members:
    """Customers of RFM segment ``name`` (``kind="segment"``) or lifecycle stage
    ``name`` (``kind="stage"``), highest spend (segments) or most recent (stages) first,
    :data:`PAGE` at a time from ``offset``."""
    if kind == "segment":
        if name not in SEGMENTS:
            raise InvalidInput(
                f"unknown RFM segment {name!r}; the segments are {', '.join(SEGMENTS)}"
            )
        t = rfm(ctx.events, as_of=ctx.as_of)
        t = t.filter(t.rfm_segment == name)
        order = [ibis.desc("monetary"), "user_id"]
        cols = ["user_id", "recency_days", "frequency", "monetary", "rfm_score"]
    elif kind == "stage":
        if name not in STAGES:
            raise InvalidInput(f"unknown stage {name!r}; the stages are {', '.join(STAGES)}")
        t = lifecycle_stages(ctx.events, as_of=ctx.as_of, users=ctx.users)
        t = t.filter(t.stage == name)
        order = ["days_since_last", "user_id"]
        cols = ["user_id", "orders", "days_since_last", "cadence_days"]
    else:
        raise InvalidInput(f"kind must be segment or stage, got {kind!r}")
    offset = max(0, int(offset))
    total = int(t.count().to_pyarrow().as_py())
    page = t.order_by(order).select(cols).limit(PAGE, offset=offset).to_pandas()
    if ctx.scores is not None and not page.empty:
        risk = ctx.scores[["user_id", "churn_risk", "clv_365d"]]
        page = page.merge(risk, on="user_id", how="left")
    rows = [
        {k: (None if _missing(v) else v) for k, v in r.items()} for r in page.to_dict("records")
    ]
    return Members(kind, name, total, offset, rows)


def _missing(value: object) -> bool:
    try:
        return bool(pd.isna(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
