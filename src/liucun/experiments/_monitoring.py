"""The sequential monitoring path: what a team would have seen looking every day.

A unit's outcome over ``window_days`` is final once its window has closed, so the look
on day ``L`` includes exactly the units whose window closed on or before ``L``. The path
cumulates the per-variant statistics over those days and evaluates the always-valid
confidence sequence (and, for contrast, the fixed-horizon interval) at every look in one
vectorized call. Stopping at the first look whose sequential interval excludes 0 keeps
the false-positive rate at ``alpha``; doing so with the fixed-horizon one does not.
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from liucun.core import InvalidInput
from liucun.experiments._analysis import compare
from liucun.experiments._outcomes import Metric, metric_stat, variant_statistics
from liucun.experiments.stats import DEFAULT_TUNING
from liucun.workspace import Workspace


def _cumulative(table: pa.Table, variant: str, looks: list[object]) -> dict[str, np.ndarray]:
    """The variant's sums cumulated over ``looks`` (days without units add nothing)."""
    rows = table.filter(pc.equal(table["variant"], variant))
    at = {v: i for i, v in enumerate(rows.column("look").to_pylist())}
    take = np.array([at.get(look, -1) for look in looks])
    out = {}
    for name in table.column_names:
        if name in ("look", "variant"):
            continue
        values = np.append(rows.column(name).to_numpy(zero_copy_only=False).astype(float), 0.0)
        out[name] = np.cumsum(values[take])  # index −1 picks the appended 0
    return out


def _column(x: object) -> pa.Array:
    return pa.array(np.asarray(x, dtype=np.float64), pa.float64(), from_pandas=True)


def monitoring_path(
    outcomes: ir.Table,
    metric: Metric,
    *,
    control: str,
    treatment: str,
    window_days: int,
    relative: bool = False,
    alpha: float = 0.05,
    tuning: float = DEFAULT_TUNING,
) -> pa.Table:
    """One row per daily look: ``look`` (UTC day), ``n_control``, ``n_treatment``,
    ``estimate``, the always-valid ``ci_low``/``ci_high``/``p_value``, and the
    fixed-horizon ``fixed_ci_low``/``fixed_ci_high``/``fixed_p_value``.

    ``outcomes`` is :func:`unit_outcomes` computed with the same ``window_days``.
    Undefined values (a look with fewer than two units in an arm) are NaN.
    """
    closes = outcomes.exposed_at + ibis.interval(days=window_days)
    dated = outcomes.mutate(look=closes.cast("timestamp").truncate("D").cast("date"))
    sums = variant_statistics(dated, [metric], by=["look", "variant"]).to_pyarrow()
    found = set(sums.column("variant").to_pylist())
    missing = [v for v in (control, treatment) if v not in found]
    if missing:
        raise InvalidInput(f"no units in variant(s) {', '.join(missing)}")
    looks = sorted(set(sums.column("look").to_pylist()))
    c = metric_stat(metric, _cumulative(sums, control, looks))
    t = metric_stat(metric, _cumulative(sums, treatment, looks))
    options = {"relative": relative, "alpha": alpha, "tuning": tuning}
    seq = compare(c, t, sequential=True, **options)  # type: ignore[arg-type]
    fixed = compare(c, t, **options)  # type: ignore[arg-type]
    return pa.table(
        {
            "look": pa.array(looks, pa.date32()),
            "n_control": pa.array(np.asarray(c.n), pa.float64()).cast(pa.int64()),
            "n_treatment": pa.array(np.asarray(t.n), pa.float64()).cast(pa.int64()),
            "estimate": _column(seq.estimate),
            "ci_low": _column(seq.ci_low),
            "ci_high": _column(seq.ci_high),
            "p_value": _column(seq.p_value),
            "fixed_ci_low": _column(fixed.ci_low),
            "fixed_ci_high": _column(fixed.ci_high),
            "fixed_p_value": _column(fixed.p_value),
        }
    )


def peeking_path(
    workspace: Workspace,
    experiment: str,
    metric: Metric,
    *,
    control: str,
    treatment: str,
    days: Sequence[int] = tuple(range(1, 31)),
    alpha: float = 0.05,
    tuning: float = DEFAULT_TUNING,
) -> pa.Table:
    """What a team looking every day after launch would have seen: for each ``day`` d,
    every unit's outcome over its first d days after exposure, compared with the
    always-valid and the fixed-horizon interval. Suits a campaign whose units were
    exposed together (where :func:`monitoring_path` has a single look).

    Columns as :func:`monitoring_path`, with ``day`` instead of ``look``.
    """
    from liucun.experiments._analysis import experiment_outcomes
    from liucun.experiments._settings import AnalysisSettings

    rows = []
    for day in days:
        outcomes, *_ = experiment_outcomes(
            workspace, experiment, AnalysisSettings(window_days=int(day))
        )
        sums = variant_statistics(outcomes, [metric]).to_pyarrow()
        found = set(sums.column("variant").to_pylist())
        if control not in found or treatment not in found:
            raise InvalidInput(f"no units in variant(s) {control!r} or {treatment!r}")
        per = {r["variant"]: r for r in sums.to_pylist()}
        arms = {
            v: metric_stat(
                metric,
                {k: np.array([float(x)]) for k, x in per[v].items() if k != "variant"},
            )
            for v in (control, treatment)
        }
        seq = compare(arms[control], arms[treatment], sequential=True, alpha=alpha, tuning=tuning)
        fixed = compare(arms[control], arms[treatment], alpha=alpha)
        rows.append(
            {
                "day": int(day),
                "n_control": int(np.asarray(arms[control].n).ravel()[0]),
                "n_treatment": int(np.asarray(arms[treatment].n).ravel()[0]),
                "estimate": _scalar(seq.estimate),
                "ci_low": _scalar(seq.ci_low),
                "ci_high": _scalar(seq.ci_high),
                "p_value": _scalar(seq.p_value),
                "fixed_ci_low": _scalar(fixed.ci_low),
                "fixed_ci_high": _scalar(fixed.ci_high),
                "fixed_p_value": _scalar(fixed.p_value),
            }
        )
    return pa.Table.from_pylist(rows)


def _scalar(x: object) -> float:
    value = np.asarray(x, dtype=np.float64).ravel()
    return float(value[0]) if value.size else float("nan")
