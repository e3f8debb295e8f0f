"""`liucun experiment analyze` and `liucun experiment plan`."""

from __future__ import annotations

import math
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer

from liucun.cli._app import (
    FormatOpt,
    OutFileOpt,
    OutputFormat,
    WorkspaceOpt,
    _emit,
    _open,
    app,
    console,
    friendly,
)

experiment_app = typer.Typer(
    help="Analyze experiments and campaigns with holdouts; plan their size.\n\n"
    "Example: [bold]liucun -w shop experiment analyze cmp-20260615-coupon[/bold]",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(experiment_app, name="experiment")


class CorrectionName(StrEnum):
    """Multiple-testing correction across metrics and variants."""

    bh = "bh"
    holm = "holm"
    none = "none"


def parse_weights(text: str | None) -> dict[str, float] | None:
    """``control=0.5,treatment=0.5`` as a dict, or None."""
    from liucun.core import ConfigError

    if not text:
        return None
    out: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        try:
            weight = float(value)
        except ValueError:
            weight = -1.0
        if not sep or not name.strip() or not weight > 0:
            raise ConfigError(
                f"--weights {text!r}: write VARIANT=SHARE pairs, e.g. control=0.5,treatment=0.5"
            )
        out[name.strip()] = weight
    return out


@experiment_app.command("analyze")
@friendly
def analyze_cmd(
    ctx: typer.Context,
    experiment: Annotated[
        str | None,
        typer.Argument(help="Experiment key in the exposure log (omit with --file)."),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            help="Per-unit outcomes instead of the log: CSV or Parquet with a `variant` "
            "column; numeric columns are metrics, `pre_X` is the CUPED covariate of X."
        ),
    ] = None,
    control: Annotated[str | None, typer.Option(help="Control variant (default: control).")] = (
        None
    ),
    window_days: Annotated[int, typer.Option(min=1, help="Outcome window after exposure.")] = 30,
    horizon_days: Annotated[int, typer.Option(min=1, help="Churn horizon after exposure.")] = 90,
    relative: Annotated[bool, typer.Option(help="Report relative lifts (delta method).")] = False,
    alpha: Annotated[float, typer.Option(min=0.0001, max=0.5, help="1 − confidence.")] = 0.05,
    cuped: Annotated[bool, typer.Option(help="CUPED with the pre-period values.")] = True,
    sequential: Annotated[
        bool, typer.Option(help="Always-valid intervals (safe to look every day).")
    ] = False,
    correction: Annotated[
        CorrectionName, typer.Option(help="Across metrics and variants.")
    ] = CorrectionName.bh,
    weights: Annotated[
        str | None, typer.Option(help="Configured split for the SRM check, e.g. control=0.5,…")
    ] = None,
    contact_cost: Annotated[float, typer.Option(min=0, help="Cost per treated unit.")] = 0.0,
    margin: Annotated[
        float, typer.Option(min=0, max=1, help="Share of revenue that is profit, for ROI.")
    ] = 1.0,
    roi_threshold: Annotated[float, typer.Option(help="Flag ROI lower bounds below this.")] = 1.2,
    fmt: FormatOpt = OutputFormat.table,
    out: OutFileOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Effects per metric with intervals, the sample-ratio check and the campaign ROI.

    Example: [bold]liucun -w shop experiment analyze cmp-20260615-coupon --sequential[/bold]
    """
    from liucun.core import ConfigError
    from liucun.experiments import AnalysisSettings, analyze_experiment, analyze_outcome_file

    if (experiment is None) == (file is None):
        raise ConfigError("name an EXPERIMENT from the exposure log, or pass --file, not both")
    settings = AnalysisSettings(
        control=control,
        window_days=window_days,
        horizon_days=horizon_days,
        relative=relative,
        alpha=alpha,
        cuped=cuped,
        sequential=sequential,
        correction=None if correction is CorrectionName.none else correction.value,  # type: ignore[arg-type]
        weights=parse_weights(weights),
        contact_cost=contact_cost,
        margin=margin,
        roi_threshold=roi_threshold,
    )
    if file is not None:
        analysis = analyze_outcome_file(file, settings)
    else:
        with _open(ctx, workspace) as ws:
            analysis = analyze_experiment(ws, str(experiment), settings)
    frame = results_frame(analysis)
    if fmt is not OutputFormat.table:
        _emit(frame, fmt, title="", out=out)
        return
    _print_split(analysis)
    _emit(
        compact(frame),
        OutputFormat.table,
        title="Effects (treatment − control)",
        out=None,
        priority=["metric", "effect [95 % CI]", "sig.", "p (adj.)", "variant"],
    )
    _print_roi(analysis)


def _print_split(analysis: Any) -> None:
    """Units per variant and the sample-ratio check, with a warning on a mismatch."""
    counts = ", ".join(f"{v} {n:,}" for v, n in analysis.counts.items())
    console.print(f"[bold]{analysis.experiment}[/bold]: {counts} ({analysis.unit_type}s)")
    srm = analysis.srm
    status = "[red]MISMATCH[/red]" if srm.mismatch else "[green]ok[/green]"
    console.print(
        f"Sample ratio: {status} (χ² = {_f(srm.statistic)}, p = {_f(srm.p_value)} against "
        + ", ".join(f"{v} {s:.0%}" for v, s in analysis.expected_shares.items())
        + ")"
    )
    if srm.mismatch:
        console.print(
            "[red]The split differs from the configured one: the assignment or the logging "
            "is broken, and the effects below cannot be trusted.[/red]"
        )


def _print_roi(analysis: Any) -> None:
    for variant, roi in analysis.roi.items():
        flag = (
            f"[red]below {roi.threshold:g} — review before repeating[/red]"
            if roi.flagged
            else "[green]ok[/green]"
        )
        console.print(
            f"ROI of {variant}: {_f(roi.roi)} [{_f(roi.ci_low)}, {_f(roi.ci_high)}] "
            f"(incremental revenue ÷ cost per treated unit); {flag}"
        )


#: The columns ``liucun experiment analyze`` prints or exports, in order.
RESULT_COLUMNS = (
    "metric",
    "variant",
    "control_mean",
    "treatment_mean",
    "estimate",
    "ci_low",
    "ci_high",
    "p_value",
    "p_adjusted",
    "significant",
    "test",
    "reason",
)


def results_frame(analysis: Any) -> pd.DataFrame:
    """One row per metric and variant, ready to print or export (the library decides
    ``significant``)."""
    return analysis.results.to_pandas()[list(RESULT_COLUMNS)]


def compact(frame: pd.DataFrame) -> pd.DataFrame:
    """The results as a narrow table for the terminal (CSV/JSON keep every column)."""
    interval = [
        f"{_f(e)} [{_f(lo)}, {_f(hi)}]"
        for e, lo, hi in zip(frame.estimate, frame.ci_low, frame.ci_high, strict=True)
    ]
    return pd.DataFrame(
        {
            "metric": frame.metric,
            "variant": frame.variant,
            "control": [_f(v) for v in frame.control_mean],
            "effect [95 % CI]": interval,
            "p (adj.)": [_f(v) for v in frame.p_adjusted.fillna(frame.p_value)],
            "sig.": ["yes" if s else "" for s in frame.significant],
        }
    )


def _f(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{float(value):.4g}"


@experiment_app.command("plan")
@friendly
def plan_cmd(
    baseline_rate: Annotated[
        float | None, typer.Option(help="Proportion metric: the control's rate, e.g. 0.2.")
    ] = None,
    sd: Annotated[
        float | None, typer.Option(help="Mean metric: its standard deviation per unit.")
    ] = None,
    mde: Annotated[
        float | None, typer.Option(help="Smallest absolute effect worth detecting.")
    ] = None,
    units: Annotated[
        int | None, typer.Option(help="Units in control: solve for the detectable effect.")
    ] = None,
    power: Annotated[float, typer.Option(min=0.5, max=0.999)] = 0.8,
    alpha: Annotated[float, typer.Option(min=0.0001, max=0.5)] = 0.05,
    ratio: Annotated[float, typer.Option(help="Treatment units per control unit.")] = 1.0,
) -> None:
    """Sample size for a detectable effect, or the detectable effect for a sample size.

    Example: [bold]liucun experiment plan --baseline-rate 0.2 --mde 0.02[/bold]
    """
    from liucun.core import ConfigError
    from liucun.experiments.stats import (
        mde_means,
        mde_proportions,
        sample_size_means,
        sample_size_proportions,
    )

    if (baseline_rate is None) == (sd is None):
        raise ConfigError("give --baseline-rate (a proportion metric) or --sd (a mean metric)")
    if (mde is None) == (units is None):
        raise ConfigError("give --mde (to get the sample size) or --units (to get the MDE)")
    common: dict[str, Any] = {"power": power, "alpha": alpha, "ratio": ratio}
    if baseline_rate is not None:
        result = (
            sample_size_proportions(mde, baseline=baseline_rate, **common)
            if mde is not None
            else mde_proportions(baseline=baseline_rate, n_control=int(units or 0), **common)
        )
    else:
        result = (
            sample_size_means(mde, sd=float(sd or 0), **common)
            if mde is not None
            else mde_means(sd=float(sd or 0), n_control=int(units or 0), **common)
        )
    if result.reason != "ok" and result.n_control is None:
        raise ConfigError(f"that power cannot be reached ({result.reason})")
    n_c = math.ceil(float(result.n_control))  # type: ignore[arg-type]
    n_t = math.ceil(float(result.n_treatment))  # type: ignore[arg-type]
    console.print(
        f"Control {n_c:,} + treatment {n_t:,} units detect an absolute effect of "
        f"{float(result.effect):.4g} with {power:.0%} power at α = {alpha:g} (two-sided)."  # type: ignore[arg-type]
    )
