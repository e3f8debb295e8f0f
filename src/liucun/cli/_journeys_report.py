"""``liucun journeys report NAME``: per-node results of a journey against its control arm,
with the true incremental margin when the data come from the simulated responding world."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from liucun.cli._app import WorkspaceOpt, _open, console, friendly
from liucun.cli._journeys_app import journeys_app
from liucun.cli._loyalty import echo_json


class ReportFormat(StrEnum):
    """How the journey report is printed."""

    table = "table"
    json = "json"


def _money(x: float | None) -> str:
    return "—" if x is None else f"{x:,.0f}"


def _interval(e: Any) -> str:
    if e.estimate is None:
        return "—"
    if e.ci_low is None:
        return f"{e.estimate:,.1f}"
    return f"{e.estimate:,.1f} [{e.ci_low:,.1f}, {e.ci_high:,.1f}]"


def _world(ws: Any, given: Path | None) -> Any:
    """The responding world to compare with: the one that ran in the workspace, checked
    against ``--truth-from`` when given."""
    from liucun.core import ConfigError
    from liucun.simulate import load_world

    world = load_world(ws)
    if given is None:
        return world
    if world is None:
        raise ConfigError(
            f"--truth-from {given}: no simulated world has run in {ws.path} (there is no "
            "world/meta.json); run `liucun journeys run --until DATE --world DIR` first"
        )
    if given.resolve() != world.shop_dir.resolve():
        raise ConfigError(
            f"--truth-from {given}: the world in {ws.path} ran from {world.shop_dir}; pass "
            "that directory (or leave the option out)"
        )
    return world


@journeys_app.command("report")
@friendly
def report_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The journey's name (its file's `name:`).")],
    truth_from: Annotated[
        Path | None,
        typer.Option(
            "--truth-from",
            help="The simulated shop directory the world ran from (`journeys run --world "
            "DIR`); the true incremental margin is then shown. Default: the world that "
            "ran in the workspace, if any.",
        ),
    ] = None,
    alpha: Annotated[
        float, typer.Option(help="1 − confidence level of the intervals.", min=0.001, max=0.5)
    ] = 0.05,
    workspace: WorkspaceOpt = None,
    fmt: Annotated[
        ReportFormat, typer.Option("--format", help="Output format.")
    ] = ReportFormat.table,
) -> None:
    """Per node: entered (by arm), sent, suppressed by reason, converted, and the
    incremental conversions, revenue and margin against the control arm with intervals
    (CUPED on the 90 days before entry), ROI with its interval and the below-1.2 flag,
    payback. On the simulated world, also the true incremental margin.

    Example: [bold]liucun -w shop journeys report winback --format json[/bold]
    """
    from liucun.journeys._report import journey_report

    with _open(ctx, workspace) as ws:
        report = journey_report(ws, name, truth=_world(ws, truth_from), alpha=alpha)
    if fmt is ReportFormat.json:
        echo_json(report.to_dict())
        return
    console.print(
        f"Journey [bold]{escape(name)}[/bold] (version {report.version}): "
        f"{report.units['treatment']:,} treatment and {report.units['control']:,} control "
        f"enrolments; goal {escape(report.goal_event)} within {report.window_days:g} days; "
        f"margin {report.margin:.0%}, cost {report.cost_per_send:g} per send.",
        highlight=False,
    )
    for w in report.warnings:
        console.print(f"[yellow]{escape(w)}[/yellow]")
    counts = Table(title="Per node (treatment/control)")
    for col in ("node", "entered", "sent", "suppressed", "held", "deferred", "converted"):
        counts.add_column(col)
    for n in report.nodes:
        counts.add_row(
            escape(n.node),
            f"{n.entered_by_arm['treatment']:,}/{n.entered_by_arm['control']:,}",
            f"{n.sent:,}",
            ", ".join(f"{escape(k)} {v:,}" for k, v in n.suppressed.items()) or "0",
            f"{n.held:,}",
            f"{n.deferred:,}",
            f"{n.converted_by_arm['treatment']:,}/{n.converted_by_arm['control']:,}",
        )
    console.print(counts)
    level = f"{(1 - report.alpha):.0%}"
    effects = Table(title=f"Incremental totals of the treatment arm ({level} intervals)")
    for col in ("node", "conversions", "margin", "ROI", "payback"):
        effects.add_column(col)
    has_truth = report.truth_source is not None
    if has_truth:
        effects.add_column("true margin")
    for n in report.nodes:
        roi = n.roi
        roi_text = "—" if roi.estimate is None else f"{roi.estimate:.2f}"
        if roi.ci_low is not None:
            roi_text += f" [{roi.ci_low:.2f}, {roi.ci_high:.2f}]"
        if roi.below_threshold:
            roi_text += f" below {roi.threshold:g}"
        row = [
            escape(n.node),
            _interval(n.effects["conversions"]),
            _interval(n.effects["margin"]),
            roi_text,
            "—" if n.payback_days is None else f"{n.payback_days} d",
        ]
        if has_truth:
            row.append(_money(n.true_incremental_margin))
        effects.add_row(*row)
    console.print(effects)
    for n in report.nodes:
        if n.note:
            console.print(f"[dim]{escape(n.node)}: {escape(n.note)}[/dim]")
