"""`liucun train`, `liucun score` and `liucun models`."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

import pandas as pd
import typer

from liucun.cli._app import (
    AsOfOpt,
    FormatOpt,
    OutFileOpt,
    OutputFormat,
    WorkspaceOpt,
    _emit,
    _open,
    app,
    as_of_or_none,
    chatter,
    console,
    friendly,
    progress_steps,
)

#: The comparison columns shown by `liucun train` and `liucun models`.
CARD_METRICS = ("auc", "pr_auc", "brier", "ece", "lift_10", "capture_10")


@app.command("train")
@friendly
def train_cmd(
    ctx: typer.Context,
    as_of: AsOfOpt = None,
    horizon: Annotated[
        int,
        typer.Option(
            min=7,
            help="Churn horizon H in days: no order in the next H days. Training needs "
            "about 3 × H + 90 days of order history (360 days for H = 90, 180 for H = 30).",
        ),
    ] = 90,
    cutoffs: Annotated[int, typer.Option(min=1, help="Training cut-offs, 30 days apart.")] = 6,
    seed: Annotated[int, typer.Option(min=0, help="Seed of LightGBM and the folds.")] = 0,
    threads: Annotated[int, typer.Option(min=0, help="LightGBM threads (0 = all cores).")] = 0,
    refit: Annotated[
        bool, typer.Option(help="Refit on all the data after the backtest (the default).")
    ] = True,
    fmt: FormatOpt = OutputFormat.table,
    out: OutFileOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Backtest and train the churn and value models; save them as the next version.

    The backtest trains on the data before (end − H), scores (end − H) next to the
    recency, RFM and BG/NBD baselines, and says honestly whether the model beats them.
    How much history that takes: the backtest's labels need H days, its training
    cut-offs another H days of labels each and 90 days of history before the first
    one, so about 3 × H + 90 days of orders (360 days for --horizon 90).

    Example: [bold]liucun -w shop train --horizon 90[/bold]
    """
    from liucun.models import train_models

    say = chatter(fmt)
    with _open(ctx, workspace) as ws:
        when = as_of_or_none(as_of, ws)
        _check_history(ws, when, horizon, cutoffs)
        with progress_steps("Training", say) as step:
            result = train_models(
                ws,
                as_of=when,
                horizon_days=horizon,
                n_cutoffs=cutoffs,
                random_state=seed,
                num_threads=threads,
                refit=refit,
                on_step=step,
            )
    card = result.card
    _emit_comparison(card, fmt, out)
    for note in card.notes:
        say.print(f"• {note}")
    say.print(
        f"Saved [bold]{card.name} {card.version}[/bold]; score with "
        f"[bold]liucun score[/bold] (see [bold]liucun models[/bold])."
    )


#: Days of order history before the first training cut-off (the library's default
#: ``min_history_days``, which the CLI does not change).
MIN_HISTORY_DAYS = 90


def _check_history(ws: Any, as_of: datetime | None, horizon: int, cutoffs: int) -> None:
    """Refuse, in the CLI's words, a --horizon the orders are too short for.

    ``train_models`` backtests one horizon before the end, on cut-offs that each need a
    horizon of labels and :data:`MIN_HISTORY_DAYS` of history; its own error names
    library settings (``horizon_days``, ``min_history_days``) that have no flag here.
    The schedule is the library's (:func:`rolling_cutoffs`); this only says which
    ``--horizon`` would fit.
    """
    from liucun.core import ConfigError, as_utc, midnight
    from liucun.models.churn import data_range, rolling_cutoffs

    start, latest = data_range(ws.events())
    end = as_utc(latest) if as_of is None else min(midnight(as_of), as_utc(latest))

    def fits(h: int) -> bool:
        try:
            rolling_cutoffs(start, end - timedelta(days=h), horizon_days=h, n_cutoffs=cutoffs)
        except ConfigError:
            return False
        return True

    if fits(horizon):
        return
    span = (end - midnight(start)).days
    need = 3 * horizon + MIN_HISTORY_DAYS
    shorter = next((h for h in range(horizon - 1, 6, -1) if fits(h)), None)
    fix = (
        f"pass --horizon {shorter} or shorter, or load more history"
        if shorter is not None
        else "load more history (even --horizon 7 does not fit)"
    )
    raise ConfigError(
        f"the orders run from {start:%Y-%m-%d} to {end:%Y-%m-%d} ({span} days), too short "
        f"to train with --horizon {horizon}: that needs about {need} days (3 × the horizon "
        f"for the backtest's and the training cut-offs' label windows, plus "
        f"{MIN_HISTORY_DAYS} days of history before the first cut-off); {fix}"
    )


def _emit_comparison(card: Any, fmt: OutputFormat, out: Any) -> None:
    """The backtest's comparison table (model vs baselines) in ``fmt``."""
    rows = pd.DataFrame(card.metrics["comparison"])
    columns = ["scorer", "role", *CARD_METRICS, *(["verdict"] if "verdict" in rows else [])]
    frame = rows.reindex(columns=columns)
    if fmt is OutputFormat.table:
        frame = frame.drop(columns="verdict", errors="ignore")  # the notes say it
        for m in CARD_METRICS:
            frame[m] = [_num(v) for v in frame[m]]
    _emit(
        frame,
        fmt,
        title=f"Held-out churn metrics ({card.horizon_days}-day horizon)",
        out=out,
        priority=["scorer", "auc", "pr_auc", "lift_10", "capture_10", "brier", "ece"],
    )


@app.command("score")
@friendly
def score_cmd(
    ctx: typer.Context,
    as_of: AsOfOpt = None,
    version: Annotated[
        str | None, typer.Option(help="Saved model version, e.g. v2 (default: the latest).")
    ] = None,
    top: Annotated[
        int, typer.Option(min=0, help="Also list the N riskiest customers by CLV at risk.")
    ] = 10,
    reasons_above: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Explain only customers with at least this churn risk (faster at scale).",
        ),
    ] = 0.0,
    fmt: FormatOpt = OutputFormat.table,
    out: OutFileOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Score every buyer: P(alive), churn risk with reasons, expected orders, CLV.

    Writes the `scores` table (re-scoring the same date with the same version replaces
    those rows).

    Example: [bold]liucun -w shop score --as-of 2026-09-30 --top 20[/bold]
    """
    from liucun.models import score_customers

    say = chatter(fmt)
    with _open(ctx, workspace) as ws:
        when = as_of_or_none(as_of, ws)
        with progress_steps("Scoring", say) as step:
            card, rows = score_customers(
                ws, as_of=when, version=version, reasons_min_risk=reasons_above, on_step=step
            )
    say.print(
        f"Scored {len(rows):,} customers with {card.name} {card.version} as of "
        f"{rows.as_of.iloc[0]:%Y-%m-%d}: mean churn risk {rows.churn_risk.mean():.1%}, "
        f"expected 365-day value {rows.clv_365d.sum():,.0f} {card.money_unit}."
    )
    for warning in rows.attrs.get("warnings", []):
        say.print(f"[yellow]•[/yellow] {warning}")
    if not top:
        return
    at_risk = rows.assign(value_at_risk=rows.churn_risk * rows.clv_365d)
    at_risk = at_risk.nlargest(top, "value_at_risk")
    shown = pd.DataFrame(
        {
            "user_id": at_risk.user_id,
            "churn_risk": at_risk.churn_risk,
            "clv_365d": at_risk.clv_365d,
            "stage": at_risk.stage,
            "reasons": ["; ".join(r) for r in at_risk.reasons],
        }
    )
    _emit(
        shown,
        fmt,
        title=f"Most value at risk (churn risk × 365-day CLV, {card.money_unit})",
        out=out,
        priority=["user_id", "churn_risk", "reasons", "clv_365d"],
    )


@app.command("models")
@friendly
def models_cmd(
    ctx: typer.Context,
    version: Annotated[
        str | None, typer.Option(help="Show this version's quality card in full.")
    ] = None,
    fmt: FormatOpt = OutputFormat.table,
    out: OutFileOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Saved model versions with their quality cards.

    With --format csv or json: the list of versions, or with --version that version's
    comparison table.

    Example: [bold]liucun -w shop models --version v1[/bold]
    """
    from liucun.core import ConfigError
    from liucun.models import list_models

    with _open(ctx, workspace) as ws:
        cards = list_models(ws.models_dir)
    if not cards:
        chatter(fmt).print("No saved models yet: train some with [bold]liucun train[/bold].")
        return
    if version is None:
        _emit(
            _versions_frame(cards, fmt),
            fmt,
            title="Saved models",
            out=out,
            priority=["version", "AUC", "verdict", "created", "data"],
        )
        return
    chosen = [c for c in cards if c.version == version]
    if not chosen:
        known = ", ".join(c.version for c in cards)
        raise ConfigError(f"no saved version {version!r}; saved versions: {known}")
    card = chosen[-1]
    if fmt is not OutputFormat.table:
        _emit_comparison(card, fmt, out)
        return
    console.print(f"[bold]{card.name} {card.version}[/bold] — trained {card.created_at}")
    console.print(
        f"Data {_day(card.data_start)} … {_day(card.data_end)}, horizon {card.horizon_days} days, "
        f"{card.customers:,} customers, {len(card.features)} features; backtest at "
        f"{str(card.metrics.get('backtest_cutoff', ''))[:10]} on "
        f"{card.metrics.get('backtest_customers', 0):,} customers."
    )
    _emit_comparison(card, fmt, out)
    value = card.metrics.get("value_accuracy", {})
    for what in ("orders", "spend"):
        v = value.get(what)
        if v:
            console.print(
                f"Value backtest, {what}: MAE {_num(v.get('mae'))}, correlation "
                f"{_num(v.get('pearson'))}, total error {_pct(v.get('aggregate_error_pct'))}"
            )
    for note in card.notes:
        console.print(f"• {note}")
    console.print("Libraries: " + ", ".join(f"{k} {v}" for k, v in card.libraries.items()))


def _versions_frame(cards: list[Any], fmt: OutputFormat) -> pd.DataFrame:
    """One row per saved version: the table's short cells, or full values for export."""
    rows = []
    for c in cards:
        model_row = next(r for r in c.metrics["comparison"] if r["role"] == "model")
        rows.append(
            {
                "model": c.name,
                "version": c.version,
                "created": c.created_at,
                "data_start": c.data_start,
                "data_end": c.data_end,
                "horizon_days": c.horizon_days,
                "customers": c.customers,
                "auc": model_row.get("auc"),
                "verdict": str(model_row.get("verdict", "")),
            }
        )
    frame = pd.DataFrame(rows)
    if fmt is not OutputFormat.table:
        return frame
    spans = zip(frame.data_start, frame.data_end, strict=True)
    return pd.DataFrame(
        {
            "model": frame.model,
            "version": frame.version,
            "created": [f"{t:%Y-%m-%d %H:%M}" for t in frame.created],
            "data": [f"{_day(a)} … {_day(b)}" for a, b in spans],
            "H": frame.horizon_days,
            "customers": frame.customers,
            "AUC": [_num(v) for v in frame.auc],
            "verdict": frame.verdict,
        }
    )


def _day(value: Any) -> str:
    """A card's instant as its day; — when unknown."""
    return "—" if value is None else f"{value:%Y-%m-%d}"


def _num(value: Any) -> str:
    return "—" if value is None or pd.isna(value) else f"{float(value):.3f}"


def _pct(value: Any) -> str:
    """A percentage already in percent units (e.g. -4.2), signed."""
    return "—" if value is None or pd.isna(value) else f"{float(value):+.1f} %"
