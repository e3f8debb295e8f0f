"""`liucun uplift train|evaluate|policy`."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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

if TYPE_CHECKING:
    from liucun.models.uplift import TargetingVerdict

uplift_app = typer.Typer(
    help="Target by treatment effect: learn from a randomized campaign, compare targeting "
    "rules, plan the next campaign.\n\n"
    "Example: [bold]liucun -w shop uplift train cmp-20260615-coupon[/bold]",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(uplift_app, name="uplift")

MarginOpt = Annotated[
    float,
    typer.Option(min=0, help="Profit per unit of outcome (the margin rate for revenue)."),
]
ContactOpt = Annotated[float, typer.Option(min=0, help="Cost of contacting one customer.")]
CouponOpt = Annotated[float, typer.Option(min=0, help="Cost of the coupon per treated customer.")]


class Outcome(StrEnum):
    """What the campaign should move."""

    revenue = "revenue"
    orders = "orders"


class Learner(StrEnum):
    """Meta-learner on LightGBM."""

    t = "t"
    x = "x"
    dr = "dr"


@uplift_app.command("train")
@friendly
def train_cmd(
    ctx: typer.Context,
    experiment: Annotated[str, typer.Argument(help="Randomized campaign in the exposure log.")],
    outcome: Annotated[Outcome, typer.Option(help="Outcome in the window.")] = Outcome.revenue,
    learner: Annotated[Learner, typer.Option(help="T-, X- or DR-learner.")] = Learner.x,
    window_days: Annotated[int, typer.Option(min=1, help="Outcome window after exposure.")] = 30,
    seed: Annotated[int, typer.Option(min=0)] = 0,
    threads: Annotated[int, typer.Option(min=0, help="LightGBM threads (0 = all).")] = 0,
    workspace: WorkspaceOpt = None,
) -> None:
    """Learn each customer's effect from a past randomized campaign; save the model.

    Example: [bold]liucun -w shop uplift train cmp-20260615-coupon --learner x[/bold]
    """
    from liucun.models.uplift import train_uplift

    with _open(ctx, workspace) as ws, progress_steps("Uplift") as step:
        card, ev = train_uplift(
            ws,
            experiment,
            outcome=outcome.value,
            learner=learner.value,
            window_days=window_days,
            random_state=seed,
            num_threads=threads,
            on_step=step,
        )
    console.print(
        f"Saved [bold]{card.name} {card.version}[/bold]. On {ev.n:,} held-out units: average "
        f"effect {ev.ate:.4g} ± {ev.ate_se:.2g} {outcome.value} per unit, AUUC {ev.auuc:.4g} "
        "(0 = random ranking)."
    )
    console.print("Compare targeting rules with [bold]liucun uplift evaluate[/bold].")


@uplift_app.command("evaluate")
@friendly
def evaluate_cmd(
    ctx: typer.Context,
    version: Annotated[str | None, typer.Option(help="Uplift model version.")] = None,
    budget_share: Annotated[
        float, typer.Option(min=0.01, max=1.0, help="Share of customers each rule may treat.")
    ] = 0.2,
    margin: MarginOpt = 0.3,
    contact_cost: ContactOpt = 0.5,
    coupon_cost: CouponOpt = 0.0,
    truth: Annotated[
        Path | None,
        typer.Option(help="A simulated shop's truth.parquet: also value on true effects."),
    ] = None,
    fmt: FormatOpt = OutputFormat.table,
    out: OutFileOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Target by uplift vs by churn risk vs everyone vs no one, valued on held-out
    randomized customers (and on the true effects with --truth).

    Example: [bold]liucun -w shop uplift evaluate --truth sim/truth.parquet[/bold]
    """
    import pyarrow.parquet as pq

    from liucun.models.uplift import (
        CampaignEconomics,
        compare_targeting,
        ranking_auuc,
        targeting_verdict,
    )

    econ = CampaignEconomics(margin=margin, contact_cost=contact_cost, coupon_cost=coupon_cost)
    truth_table = pq.read_table(truth) if truth is not None else None
    with _open(ctx, workspace) as ws:
        result = compare_targeting(
            ws, econ, version=version, budget_share=budget_share, truth=truth_table
        )
    table = result.policies.copy()
    table["ranking_auuc"] = table.policy.map(ranking_auuc(result.evaluations))
    shown = table
    if fmt is OutputFormat.table:
        shown = pd.DataFrame(
            {
                "policy": table.policy,
                "treated": table.n_targeted,
                "value [95 % CI]": [
                    f"{v:+.3g} [{lo:+.3g}, {hi:+.3g}]"
                    for v, lo, hi in zip(table.value, table.ci_low, table.ci_high, strict=True)
                ],
                "true value": table.true_value,
                "ranking AUUC": table.ranking_auuc,
            }
        )
    _emit(
        shown,
        fmt,
        title=f"Incremental profit per customer, treating {result.budget:,} of "
        f"{result.plan.n_customers:,} held-out customers ({result.card.metrics['experiment']})",
        out=out,
    )
    if fmt is OutputFormat.table:
        console.print(
            "value: inverse-propensity estimate on the held-out randomized customers "
            "(± its interval); true_value: on the simulated true effects; ranking_auuc: the "
            "rule's ranking scored as an uplift ranking (0 = random)."
        )
        verdict = targeting_verdict(table)
        if verdict is None:
            console.print("No saved churn model: train one with `liucun train` to compare.")
        else:
            console.print(verdict_sentence(verdict))


def verdict_sentence(verdict: TargetingVerdict) -> str:
    """The targeting verdict as one sentence."""
    better = "beats" if verdict.uplift_wins else "does not beat"
    basis = {
        "true_effects": "on the true effects",
        "held_out_estimate": "estimated on held-out data",
    }[verdict.basis]
    return (
        f"Targeting by uplift {better} targeting by churn risk {basis}: "
        f"{verdict.uplift_value:+.4g} vs {verdict.churn_risk_value:+.4g} incremental profit "
        "per customer."
    )


@uplift_app.command("policy")
@friendly
def policy_cmd(
    ctx: typer.Context,
    max_customers: Annotated[
        int | None, typer.Option(min=1, help="Treat at most this many customers.")
    ] = None,
    max_spend: Annotated[float | None, typer.Option(min=0, help="Spend at most this.")] = None,
    margin: MarginOpt = 0.3,
    contact_cost: ContactOpt = 0.5,
    coupon_cost: CouponOpt = 0.0,
    version: Annotated[str | None, typer.Option(help="Uplift model version.")] = None,
    as_of: AsOfOpt = None,
    list_out: Annotated[
        Path | None, typer.Option("--list", help="Write the customers to treat to this CSV.")
    ] = None,
    fmt: Annotated[
        OutputFormat,
        typer.Option(
            "--format",
            help="table: the best 10 to treat; csv, json (or parquet with --out): every "
            "customer to treat, the sentences on stderr.",
        ),
    ] = OutputFormat.table,
    out: OutFileOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Whom to treat in the next campaign for the most incremental profit within a budget;
    customers the action would hurt ("sleeping dogs") are left out and counted.

    Example: [bold]liucun -w shop uplift policy --max-customers 5000 --list treat.csv[/bold]
    """
    from liucun.core import ConfigError, write_csv
    from liucun.models.uplift import CampaignEconomics, plan_next_campaign

    if max_customers is None and max_spend is None:
        raise ConfigError(
            "give a budget, --max-customers or --max-spend: predicted effects are noisy, and "
            "an unbudgeted plan trusts their size more than a held-out check supports"
        )
    econ = CampaignEconomics(margin=margin, contact_cost=contact_cost, coupon_cost=coupon_cost)
    with _open(ctx, workspace) as ws:
        plan, customers = plan_next_campaign(
            ws,
            econ,
            version=version,
            as_of=as_of_or_none(as_of, ws),
            max_customers=max_customers,
            max_spend=max_spend,
        )
    say = chatter(fmt)
    say.print(
        f"Treat {plan.n_targeted:,} of {plan.n_customers:,} customers: expected incremental "
        f"profit {plan.expected_incremental_profit:,.0f} for a cost of "
        f"{plan.expected_cost:,.0f}"
        + (f" (ROI {plan.roi:.2f})" if plan.roi is not None else "")
        + "."
    )
    say.print(
        f"Left out: {plan.n_sleeping_dogs:,} sleeping dogs (the action is expected to lose "
        f"their purchases), {plan.n_unprofitable:,} unprofitable, {plan.n_over_budget:,} over "
        "the budget."
    )
    if list_out is not None:
        chosen = customers[customers.treat]
        write_csv(chosen, list_out)
        say.print(f"Wrote {len(chosen):,} customers to [bold]{list_out}[/bold].")
    elif fmt is OutputFormat.table:
        _emit(
            pd.DataFrame(customers.head(10)),
            OutputFormat.table,
            title="Best customers to treat",
            out=None,
            priority=["user_id", "treat"],
        )
    else:
        _emit(pd.DataFrame(customers[customers.treat]), fmt, title="", out=out)
