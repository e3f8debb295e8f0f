"""`liucun train`, `liucun score` and `liucun models`."""

from __future__ import annotations

from typing import Annotated, Any

import pandas as pd
import typer
from rich.table import Table

from liucun.cli._app import (
    AsOfOpt,
    FormatOpt,
    OutFileOpt,
    OutputFormat,
    WorkspaceOpt,
    _emit,
    _open,
    app,
    console,
    friendly,
    parse_day,
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
        int, typer.Option(min=7, help="Churn horizon H in days: no order in the next H days.")
    ] = 90,
    cutoffs: Annotated[int, typer.Option(min=1, help="Training cut-offs, 30 days apart.")] = 6,
    seed: Annotated[int, typer.Option(min=0, help="Seed of LightGBM and the folds.")] = 0,
    threads: Annotated[int, typer.Option(min=0, help="LightGBM threads (0 = all cores).")] = 0,
    refit: Annotated[
        bool, typer.Option(help="Refit on all the data after the backtest (the default).")
    ] = True,
    workspace: WorkspaceOpt = None,
) -> None:
    """Backtest and train the churn and value models; save them as the next version.

    The backtest trains on the data before (end − H), scores (end − H) next to the
    recency, RFM and BG/NBD baselines, and says honestly whether the model beats them.

    Example: [bold]liucun -w shop train --horizon 90[/bold]
    """
    from liucun.models import train_models

    with _open(ctx, workspace) as ws, progress_steps("Training") as step:
        result = train_models(
            ws,
            as_of=parse_day(as_of, "--as-of"),
            horizon_days=horizon,
            n_cutoffs=cutoffs,
            random_state=seed,
            num_threads=threads,
            refit=refit,
            on_step=step,
        )
    card = result.card
    console.print(_comparison_table(card.metrics["comparison"], card))
    for note in card.notes:
        console.print(f"• {note}")
    console.print(
        f"Saved [bold]{card.name} {card.version}[/bold]; score with "
        f"[bold]liucun score[/bold] (see [bold]liucun models[/bold])."
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

    with _open(ctx, workspace) as ws, progress_steps("Scoring") as step:
        card, rows = score_customers(
            ws,
            as_of=parse_day(as_of, "--as-of"),
            version=version,
            reasons_min_risk=reasons_above,
            on_step=step,
        )
    console.print(
        f"Scored {len(rows):,} customers with {card.name} {card.version} as of "
        f"{rows.as_of.iloc[0]:%Y-%m-%d}: mean churn risk {rows.churn_risk.mean():.1%}, "
        f"expected 365-day value {rows.clv_365d.sum():,.0f}."
    )
    for warning in rows.attrs.get("warnings", []):
        console.print(f"[yellow]•[/yellow] {warning}")
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
    _emit(shown, fmt, title="Most value at risk (churn risk × 365-day CLV)", out=out)


@app.command("models")
@friendly
def models_cmd(
    ctx: typer.Context,
    version: Annotated[
        str | None, typer.Option(help="Show this version's quality card in full.")
    ] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Saved model versions with their quality cards.

    Example: [bold]liucun -w shop models --version v1[/bold]
    """
    from liucun.core import ConfigError
    from liucun.models import list_models

    with _open(ctx, workspace) as ws:
        cards = list_models(ws.models_dir)
    if not cards:
        console.print("No saved models yet: train some with [bold]liucun train[/bold].")
        return
    if version is None:
        table = Table(title="Saved models")
        for col in ("model", "version", "created", "data", "H", "customers", "AUC", "verdict"):
            table.add_column(col)
        for c in cards:
            row = next(r for r in c.metrics["comparison"] if r["role"] == "model")
            table.add_row(
                c.name,
                c.version,
                f"{c.created_at:%Y-%m-%d %H:%M}",
                f"{_day(c.data_start)} … {_day(c.data_end)}",
                str(c.horizon_days),
                f"{c.customers:,}",
                f"{row['auc']:.3f}",
                str(row.get("verdict", "")),
            )
        console.print(table)
        return
    chosen = [c for c in cards if c.version == version]
    if not chosen:
        known = ", ".join(c.version for c in cards)
        raise ConfigError(f"no saved version {version!r}; saved versions: {known}")
    card = chosen[-1]
    console.print(f"[bold]{card.name} {card.version}[/bold] — trained {card.created_at}")
    console.print(
        f"Data {_day(card.data_start)} … {_day(card.data_end)}, horizon {card.horizon_days} days, "
        f"{card.customers:,} customers, {len(card.features)} features; backtest at "
        f"{str(card.metrics.get('backtest_cutoff', ''))[:10]} on "
        f"{card.metrics.get('backtest_customers', 0):,} customers."
    )
    console.print(_comparison_table(card.metrics["comparison"], card))
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


def _comparison_table(records: list[dict[str, Any]], card: Any) -> Table:
    table = Table(title=f"Held-out churn metrics ({card.horizon_days}-day horizon)")
    table.add_column("scorer")
    table.add_column("role")
    for m in CARD_METRICS:
        table.add_column(m, justify="right")
    for r in records:
        table.add_row(str(r["scorer"]), str(r["role"]), *[_num(r.get(m)) for m in CARD_METRICS])
    return table


def _day(value: Any) -> str:
    """A card's instant as its day; — when unknown."""
    return "—" if value is None else f"{value:%Y-%m-%d}"


def _num(value: Any) -> str:
    return "—" if value is None or pd.isna(value) else f"{float(value):.3f}"


def _pct(value: Any) -> str:
    """A percentage already in percent units (e.g. -4.2), signed."""
    return "—" if value is None or pd.isna(value) else f"{float(value):+.1f} %"
