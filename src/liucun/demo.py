"""``make demo``: a simulated shop, end to end, on the embedded default (DuckDB).

Creates a workspace, simulates a B2C shop, ingests it, shows the warehouse, the metrics and
the segments, trains and scores the churn and value models, runs the default loyalty
program (examples/loyalty/program.yaml) over the shop as of its data end, writes the HTML
report and says where to look. Re-running it reuses the simulated files and adds nothing
twice.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pyarrow as pa

#: The repository's examples: the default loyalty program (loyalty/program.yaml) and the
#: demo's journeys (journeys/*.yaml).
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _examples() -> Path:
    """The repository's examples/ (the demo runs from a checkout: ``make demo``)."""
    return EXAMPLES if EXAMPLES.is_dir() else Path("examples").resolve()


def _program_file() -> Path:
    """The repository's default program."""
    return _examples() / "loyalty" / "program.yaml"


#: Share of the repeat buyers who buy the program's paid plan in the simulated shop.
MEMBERSHIP_SHARE = 0.15

#: The demo's journeys (examples/journeys/ in the repository) on the consumer shop, in the
#: order applied.
JOURNEYS = ("winback_risk", "inactive_push_coupon", "late_delivery")
#: The wholesale journey runs on a second, B2B shop beside it (the consumer shop has no
#: wholesale accounts to remind), with its own workspace and report under ``b2b/``.
B2B_JOURNEYS = ("b2b_replenishment",)
#: Buyers of the simulated wholesale shop: enough replenishment enrolments in 60 days for
#: a control arm of 10 % to reach the 30 customers an interval needs at each node.
B2B_USERS = 6_000
#: Simulated days the journeys run for after the shop's data end.
JOURNEY_DAYS = 60
#: Simulated time per engine tick of the demo's run (a worker polls every few seconds;
#: a tick a day at 00:00 UTC, 08:00 in the shop's Asia/Shanghai, keeps the demo's 60 days
#: to minutes; waits and conversion windows are days long).
JOURNEY_STEP = "1d"
#: The demo delivers to files (JSON lines under the workspace's outbox/): a dry run.
DEMO_CHANNELS = ("email", "sms", "push", "wechat", "whatsapp", "in_app", "webhook")


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the process exit code."""
    parser = argparse.ArgumentParser(description="liucun end-to-end demo on a simulated shop.")
    parser.add_argument("--dir", type=Path, default=Path("demo-data"), help="Demo directory.")
    parser.add_argument("--users", type=int, default=50_000, help="Simulated users.")
    parser.add_argument("--seed", type=int, default=7, help="Simulation seed.")
    args = parser.parse_args(argv)

    from liucun.cli import app, console

    workspace, shop = args.dir / "workspace", args.dir / "shop"
    report = args.dir / "report.html"
    steps = _insight_steps(workspace, shop, users=args.users, seed=args.seed)
    if (shop / "truth.parquet").exists():
        steps.pop(1)
        console.print(f"Reusing the simulated shop in {shop}.")
    code = _run(app, console, steps)
    if code:
        return code
    code = _run(app, console, _decision_steps(workspace, shop))
    if code:
        return code
    code = _run(app, console, _loyalty_steps(workspace, shop))
    if code:
        return code
    code = _run(app, console, _journey_steps(workspace, shop, report, JOURNEYS))
    if code:
        return code
    b2b = args.dir / "b2b"
    code = _run(app, console, _b2b_steps(b2b, seed=args.seed))
    if code:
        return code
    b2b_report = b2b / "report.html"
    code = _run(
        app, console, _journey_steps(b2b / "workspace", b2b / "shop", b2b_report, B2B_JOURNEYS)
    )
    if code:
        return code
    _where_to_look(console, workspace, shop, report, b2b_report)
    return 0


def _insight_steps(workspace: Path, shop: Path, *, users: int, seed: int) -> list[list[str]]:
    """Create, simulate (step 1, skipped when the shop exists), ingest, look, train, score."""
    ws = ["-w", str(workspace)]
    simulate = ["simulate", "--preset", "b2c", "--users", str(users), "--days", "365"]
    simulate += ["--seed", str(seed), "--membership-share", str(MEMBERSHIP_SHARE)]
    simulate += ["--out", str(shop)]
    retention = ["retention", "--period", "month", "--max-period", "6", "--kind", "unbounded"]
    retention += ["--since", "2026-01-01"]
    return [
        ["init", str(workspace)],
        simulate,
        [*ws, "ingest", "simulated", str(shop)],
        [*ws, "status"],
        [*ws, "metrics"],
        [*ws, *retention],
        [*ws, "segments", "--by", "stage"],
        [*ws, "segments", "--by", "rfm"],
        [*ws, "train"],
        [*ws, "score", "--top", "10"],
    ]


def _b2b_steps(base: Path, *, seed: int) -> list[list[str]]:
    """The wholesale shop: create, simulate (skipped when it exists), ingest."""
    workspace, shop = base / "workspace", base / "shop"
    simulate = ["simulate", "--preset", "b2b", "--users", str(B2B_USERS), "--days", "365"]
    simulate += ["--seed", str(seed), "--out", str(shop)]
    steps = [
        ["init", str(workspace)],
        simulate,
        ["-w", str(workspace), "ingest", "simulated", str(shop)],
    ]
    if (shop / "truth.parquet").exists():
        steps.pop(1)
    return steps


def _decision_steps(workspace: Path, shop: Path) -> list[list[str]]:
    """The past campaign's experiment and uplift."""
    ws = ["-w", str(workspace)]
    campaign = _campaign(shop)
    truth = str(shop / "truth.parquet")
    return [
        [*ws, "experiment", "analyze", campaign],
        [*ws, "uplift", "train", campaign],
        [*ws, "uplift", "evaluate", "--truth", truth],
        [*ws, "uplift", "policy", "--max-customers", "2000"],
    ]


def _loyalty_steps(workspace: Path, shop: Path) -> list[list[str]]:
    """The default loyalty program over the shop.

    The simulated history ends months before today, so these steps run with the clock
    stopped at its data end (``--now``): points are booked, tiers reviewed and idle
    members warned as they would have been the day the history ends, not as if every
    customer had been silent since.
    """
    from liucun.simulate import shop_end

    ws_args = ["--now", shop_end(shop).isoformat(), "-w", str(workspace)]
    loyalty = [*ws_args, "loyalty"]
    return [
        [*loyalty, "program", "apply", str(_program_file())],
        [*loyalty, "member", "import"],
        [*loyalty, "accrue"],
        [*loyalty, "tiers", "review"],
        [*loyalty, "member", "due"],
        [*loyalty, "member", "remind"],
        [*loyalty, "loss-aversion"],
        [*loyalty, "check"],
        [*loyalty, "summary"],
    ]


def _journey_steps(
    workspace: Path, shop: Path, report: Path, names: tuple[str, ...]
) -> list[list[str]]:
    """The demo journeys ``names`` over :data:`JOURNEY_DAYS` simulated days from the shop's
    end, in which the simulated customers react to what is sent (the responding world);
    their reports against the control arm and the truth; then the HTML report.

    Channels deliver to files (a dry run). A second run of the demo finds the journeys
    applied and the world run to its end, and only reports again.
    """
    from datetime import timedelta

    from liucun.simulate import load_world, shop_end
    from liucun.workspace import open_workspace

    _file_channels(workspace)
    start = shop_end(shop)
    until = start + timedelta(days=JOURNEY_DAYS)
    with open_workspace(workspace) as ws:
        world = load_world(ws)
        ran = world is not None and world.now is not None and world.now >= until
    ws_args = ["--now", start.isoformat(), "-w", str(workspace)]
    contacts = _demo_contacts(shop)
    steps: list[list[str]] = [
        [*ws_args, "consent", "import"],
        [*ws_args, "contacts", "import", str(contacts)],
    ]
    for name in names:
        path = str(_examples() / "journeys" / f"{name}.yaml")
        steps += [
            [*ws_args, "journeys", "apply", path],
            [*ws_args, "journeys", "approve", name, "--by", "demo"],
            [*ws_args, "journeys", "activate", name],
        ]
    if not ran:
        run = ["journeys", "run", "--until", until.date().isoformat(), "--world", str(shop)]
        run += ["--step", JOURNEY_STEP]
        steps.append([*ws_args, *run])
    after = ["--now", until.isoformat(), "-w", str(workspace)]
    steps += [[*after, "journeys", "report", name] for name in names]
    steps.append([*after, "report", "--out", str(report)])
    return steps


def _demo_contacts(shop: Path) -> Path:
    """A contacts file for the simulated customers (made-up addresses under the reserved
    .invalid domain, a push token for those with a device): the simulator, like a shop's
    export, keeps no address in clear, and delivery needs one per addressed channel."""
    path = shop / "contacts.csv"
    if path.exists():
        return path
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    users = pq.read_table(shop / "users.parquet", columns=["user_id"])["user_id"]
    lower = pc.utf8_lower(users)
    table = pa.table(
        {
            "user_id": users,
            "email": pc.binary_join_element_wise(lower, "@demo.invalid", ""),
            "push_token": pc.binary_join_element_wise("push-", lower, ""),
        }
    )
    pacsv.write_csv(table, path)
    return path


def _file_channels(workspace: Path) -> None:
    """Deliver every channel to JSON-lines files under the workspace (a dry run), unless
    the workspace's liucun.toml configures channels already."""
    settings = workspace / "liucun.toml"
    text = settings.read_text(encoding="utf-8")
    if "[channels." in text.replace("# [channels.", ""):
        return
    lines = ["", "# The demo delivers to files under outbox/ (a dry run)."]
    for channel in DEMO_CHANNELS:
        lines += [f"[channels.{channel}]", 'kind = "file"']
    settings.write_text(text.rstrip("\n") + "\n" + "\n".join(lines) + "\n", encoding="utf-8")


def _where_to_look(
    console: Any, workspace: Path, shop: Path, report: Path, b2b_report: Path
) -> None:
    console.rule("[bold]Where to look")
    console.print(f"Report:           {report.resolve()}  (open it in a browser; works offline)")
    console.print(f"                  file://{report.resolve()}")
    console.print(
        f"Wholesale shop:   {b2b_report.resolve()}  (the B2B replenishment journey; its "
        f"workspace is {b2b_report.parent / 'workspace'})"
    )
    console.print(
        f"Workspace:        {workspace.resolve()}  (liucun.toml, warehouse.duckdb, "
        "state.sqlite, secret.key)"
    )
    console.print(f"Simulated shop:   {shop.resolve()}  (users.parquet, events/, truth.parquet)")
    console.print(
        f"Cockpit:          .venv/bin/liucun -w {workspace} web-users add admin --role admin, "
        "then make serve and open http://127.0.0.1:8000/cockpit/"
    )
    console.print(
        f"Try:  .venv/bin/liucun -w {workspace} retention --period week --breakdown "
        "channel --format csv"
    )
    console.print(f"      .venv/bin/liucun -w {workspace} models --version v1")
    console.print(
        f"      .venv/bin/liucun -w {workspace} uplift policy --max-customers 5000 --list treat.csv"
    )
    console.print(f"      .venv/bin/liucun -w {workspace} quarantine show")
    console.print(f"      .venv/bin/liucun -w {workspace} loyalty tiers list")
    console.print(f"      .venv/bin/liucun -w {workspace} loyalty account USER --format json")
    console.print(f"      .venv/bin/liucun -w {workspace} state status")
    console.print(
        f"      .venv/bin/liucun -w {workspace} ingest events YOUR_ORDERS.csv "
        "--event-type order --map YOUR_TIME_COLUMN=ts --currency CNY"
    )


def _run(app: Any, console: Any, steps: list[list[str]]) -> int:
    """Run CLI steps in turn; the first failing step's exit code, else 0."""
    for step in steps:
        console.rule(f"[bold]liucun {' '.join(step)}")
        code = app(args=step, standalone_mode=False)
        if code:
            return int(code)
    return 0


def _campaign(shop: Path) -> str:
    """The simulated shop's randomized past campaign (logged by `ingest simulated`)."""
    import pyarrow.parquet as pq

    from liucun.simulate import campaign_exposures

    log = campaign_exposures(pq.read_table(shop / "truth.parquet"))
    return str(log["experiment"][0].as_py())


if __name__ == "__main__":
    raise SystemExit(main())
