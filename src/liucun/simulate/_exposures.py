"""The simulated shop's campaign as an exposure log: who was assigned to which arm."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc


def campaign_exposures(truth: pa.Table) -> pa.Table:
    """The randomized past campaign of ``truth.parquet`` as exposure rows.

    One row per campaign unit: ``experiment`` (the campaign id), ``layer`` (null),
    ``unit_type`` ("user"), ``unit_id``, ``variant`` ("treatment" or "control"),
    ``probability`` (the assignment propensity), ``holdout`` (false) and ``ts`` (when the
    coupon went out) — what :func:`liucun.experiments.log_exposures` takes. A person
    with a duplicate registration splits their orders over two ids, so those rows are
    left out (as a shop would log the one id it contacted).
    """
    keep = pc.and_(pc.fill_null(truth["in_campaign"], False), pc.equal(truth["order_share"], 1.0))
    rows = truth.filter(keep)
    n = rows.num_rows
    return pa.table(
        {
            "experiment": rows["campaign_id"],
            "layer": pa.nulls(n, pa.string()),
            "unit_type": pa.array(["user"] * n, pa.string()),
            "unit_id": rows["user_id"],
            "variant": pc.if_else(rows["treated"], "treatment", "control"),
            "probability": rows["propensity"],
            "holdout": pa.array([False] * n, pa.bool_()),
            "ts": rows["campaign_start_ts"],
        }
    )
