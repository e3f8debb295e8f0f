"""``/v1/experiments``: the experiments and campaigns in the exposure log, and one
experiment's analysis — effects per metric with intervals, the sample-ratio check and
the campaign ROI, what `liucun experiment analyze KEY --format json` reports. Read-only.

Both read the warehouse's copy of the exposure log, brought up to date first
(:meth:`Workspace.sync`), under the service's warehouse lock.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from liucun.api._schemas import JsonResponse
from liucun.api.routers._common import errors, router, service
from liucun.api.routers._resources import (
    MAX_NAME,
    Cursor,
    Limit,
    Page,
    ReadKey,
    not_found,
    offset_page,
    plain,
    records,
)

api = router("/v1/experiments", "experiments")
Key = Annotated[
    str, Path(min_length=1, max_length=MAX_NAME, description="The experiment's key in the log.")
]


class AnalysisPublic(BaseModel):
    """One experiment's analysis (`liucun experiment analyze KEY --format json`)."""

    experiment: str
    control: str
    unit_type: str = Field(description="user or account.")
    counts: dict[str, int] = Field(description="Units per variant.")
    expected_shares: dict[str, float] = Field(description="The share each should have had.")
    srm: dict[str, Any] = Field(description="The sample-ratio check (statistic, p_value, …).")
    results: list[dict[str, Any]] = Field(
        description="One row per metric and treatment variant: means, estimate, ci_low, "
        "ci_high, p_value, p_adjusted, significant, test, reason."
    )
    roi: dict[str, dict[str, Any]] = Field(description="Campaign ROI per treatment variant.")
    settings: dict[str, Any] = Field(description="The options the analysis ran with.")


def _summary(ws: Any) -> list[dict[str, Any]]:
    from liucun.experiments import experiment_summary

    ws.sync()  # exposures are logged into state; analyses read the warehouse's copy
    return records(experiment_summary(ws.table("exposures")).to_pyarrow())


@api.get("", response_model=Page, responses=errors(422, 503), summary="Every experiment logged")
async def list_all(
    request: Request, key: ReadKey, limit: Limit = 50, cursor: Cursor = None
) -> JsonResponse:
    """Each experiment or campaign in the exposure log, the most recently exposed
    first: unit type, units exposed, variants, first and last exposure."""
    svc = service(request)

    def read() -> list[dict[str, Any]]:
        with svc.warehouse() as ws:
            return _summary(ws)

    return JsonResponse(offset_page(await run_in_threadpool(read), limit, cursor))


@api.get(
    "/{experiment}",
    response_model=AnalysisPublic,
    responses=errors(404, 422, 503),
    summary="An experiment's analysis",
)
async def get_analysis(
    request: Request,
    experiment: Key,
    key: ReadKey,
    control: Annotated[
        str | None, Query(max_length=MAX_NAME, description="Control variant.")
    ] = None,
    window_days: Annotated[int, Query(ge=1, le=3650, description="Outcome window.")] = 30,
    horizon_days: Annotated[int, Query(ge=1, le=3650, description="Churn horizon.")] = 90,
    alpha: Annotated[float, Query(ge=0.0001, le=0.5, description="1 − confidence.")] = 0.05,
    relative: Annotated[bool, Query(description="Relative lifts (delta method).")] = False,
    cuped: Annotated[bool, Query(description="CUPED with the pre-period values.")] = True,
    sequential: Annotated[bool, Query(description="Always-valid intervals.")] = False,
    correction: Annotated[
        Literal["bh", "holm", "none"], Query(description="Across metrics and variants.")
    ] = "bh",
    contact_cost: Annotated[float, Query(ge=0, le=1e9, description="Cost per treated unit.")] = 0,
    margin: Annotated[float, Query(ge=0, le=1, description="Profit share of revenue.")] = 1.0,
) -> JsonResponse:
    """Every treatment variant against the control on every retention metric (estimate,
    interval, p-value corrected across metrics and variants, the decision), units per
    variant with the sample-ratio check, and the ROI of each treatment
    (:func:`liucun.experiments.analyze_experiment`, the CLI's defaults)."""
    from liucun.experiments import AnalysisSettings, analyze_experiment

    settings = AnalysisSettings(
        control=control,
        window_days=window_days,
        horizon_days=horizon_days,
        relative=relative,
        alpha=alpha,
        cuped=cuped,
        sequential=sequential,
        correction=None if correction == "none" else correction,
        contact_cost=contact_cost,
        margin=margin,
    )
    svc = service(request)

    def read() -> dict[str, Any]:
        with svc.warehouse() as ws:
            known = [r["experiment"] for r in _summary(ws)]
            if experiment not in known:
                raise not_found(
                    f"no exposures are logged under experiment {experiment!r}; GET "
                    "/v1/experiments lists the experiments"
                    + (f" ({', '.join(known[:10])})" if known else " (none is logged yet)")
                )
            analysis = analyze_experiment(ws, experiment, settings)
        return {
            "experiment": analysis.experiment,
            "control": analysis.control,
            "unit_type": analysis.unit_type,
            "counts": plain(analysis.counts),
            "expected_shares": plain(analysis.expected_shares),
            "srm": plain(analysis.srm),
            "results": records(analysis.results),
            "roi": plain(analysis.roi),
            "settings": plain(analysis.settings),
        }

    return JsonResponse(await run_in_threadpool(read))
