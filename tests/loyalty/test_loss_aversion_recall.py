"""Loss aversion on SQLite and PostgreSQL, continued: recall refusals and tier upgrades,
the dry run (writes nothing, predicts the real run), one rule at a time, repaired warning
events, ``boost_tier``, ``check`` on decays, and the CLI. Same program and conventions as
test_loss_aversion.py; figures worked out by hand."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from liucun import loyalty
from liucun.core import ConfigError
from liucun.state import LoyaltyEntry, LoyaltyMemberTier
from liucun.workspace import Workspace
from loss_support import (
    T0,
    events,
    local,
    notices,
    program_workspace,
    run,
    table_rows,
    warnings_in_warehouse,
)


@pytest.fixture
def ws(tmp_path: Path, state_url: str) -> Iterator[Workspace]:
    with program_workspace(tmp_path / "ws", state_url) as w:
        yield w


def test_recall_refusals_are_recorded_and_the_boost_goes_one_tier_up(ws: Workspace) -> None:
    for user in ("has_code", "adv", "top", "small"):
        loyalty.award(ws, user, 100 if user != "small" else 9, key=f"{user}:a")
    # 'has_code' already holds its one recall_10 (per_customer 1)
    loyalty.issue_coupon(ws, "recall_10", "has_code", key="earlier-campaign")
    with ws.state.write() as s:  # stored tiers, as the tier review writes them
        for user, tier in (("adv", "进阶"), ("top", "尊享")):
            s.add(
                LoyaltyMemberTier(
                    program="default",
                    user_id=user,
                    tier=tier,
                    growth_in_window=1500.0,
                    tier_since=T0,
                    updated_at=T0,
                )
            )
    run(ws, date(2026, 1, 31))
    result = run(ws, date(2026, 2, 28))
    recall = {r.user_id: r.details for r in result.rows if r.rule == "recall"}
    assert "per_customer limit of 1" in recall["has_code"]["coupon_refused"]
    assert recall["has_code"]["coupon_value"] == 0.0
    assert (recall["adv"]["base_tier"], recall["adv"]["boost_tier"]) == ("进阶", "尊享")
    assert recall["top"]["boost_tier"] is None
    assert recall["top"]["boost_note"] == "already at the highest tier 尊享"
    # 'small' holds 9 points: 10 % rounds to 0, so nothing decays, yet the recall goes out
    decays = {r.user_id: (r.status, r.points) for r in result.rows if r.rule == "decay"}
    assert decays == {
        "has_code": ("done", 10),
        "adv": ("done", 10),
        "top": ("done", 10),
        "small": ("skipped", 0),
    }
    assert result.counts == {"warn": 0, "decay": 3, "recall": 4}
    assert (result.coupons, result.coupon_value, result.boosts) == (3, 30.0, 3)
    stored = {n.user_id: json.loads(n.details) for n in notices(ws, "recall")}
    assert "per_customer limit" in stored["has_code"]["coupon_refused"]
    assert all("coupon_code" not in d for d in stored.values())  # codes stay out of notices
    with ws.state.read() as s:
        tiers = {
            r.user_id: (r.tier, r.boost_tier)
            for r in s.execute(
                select(
                    LoyaltyMemberTier.user_id, LoyaltyMemberTier.tier, LoyaltyMemberTier.boost_tier
                )
            )
        }
    assert tiers == {
        "adv": ("进阶", "尊享"),
        "top": ("尊享", None),
        "has_code": ("基础", "进阶"),
        "small": ("基础", "进阶"),
    }


# -- the dry run --------------------------------------------------------------------------


def test_a_dry_run_writes_nothing_and_predicts_the_real_run(ws: Workspace) -> None:
    for user in ("due", "refused", "fresh", "quiet"):
        loyalty.award(ws, user, 123, key=f"{user}:a")
    loyalty.issue_coupon(ws, "recall_10", "refused", key="earlier")
    run(ws, date(2026, 1, 31))  # due, refused, fresh, quiet warned
    ws.clock.set(local(2026, 2, 2, 9))
    events(ws, ("fresh", "order", local(2026, 2, 1, 10), 10.0))  # back: a new spell
    events(ws, ("late", "visit", local(2026, 1, 2, 10), None))
    loyalty.award(ws, "late", 64, key="late:a")  # an award on 2 Feb, 09:00 local
    ws.clock.set(local(2026, 2, 20, 9))
    loyalty.award(ws, "quiet", 5, key="quiet:b")  # quiet earned again: a new spell
    before = table_rows(ws)
    preview = run(ws, date(2026, 3, 4), dry_run=True)
    assert table_rows(ws) == before
    shown = [(r.rule, r.user_id, r.points, r.status) for r in preview.rows]
    # 'fresh' is idle 31 days (since 1 Feb), 'late' 30 (2 Feb), 'quiet' 12 (20 Feb); 'due' and
    # 'refused' reach their first decay (28 Feb) with floor(12.3) = 12 points
    assert shown == [
        ("decay", "due", 12, "planned"),
        ("recall", "due", 0, "planned"),
        ("warn", "fresh", 123, "planned"),
        ("warn", "late", 64, "planned"),
        ("decay", "refused", 12, "planned"),
        ("recall", "refused", 0, "planned"),
    ]
    assert preview.events == 2
    assert (preview.points_decayed, preview.coupons, preview.coupon_value) == (24, 1, 10.0)
    real = run(ws, date(2026, 3, 4))

    def same(rows: list[loyalty.LossRow]) -> list[tuple[Any, ...]]:
        return [
            (
                r.rule,
                r.user_id,
                r.key,
                r.points,
                {k: v for k, v in r.details.items() if k != "coupon_code"},
            )
            for r in rows
        ]

    assert same(real.rows) == same(preview.rows)
    assert (real.counts, real.events, real.coupon_value) == (
        preview.counts,
        preview.events,
        preview.coupon_value,
    )
    assert all(r.status == "done" for r in real.rows)
    after = table_rows(ws)
    # 2 warnings, 2 decays, 2 recalls and the 2 tier boosts of the recalls
    assert after["loyalty_notices"] - before["loyalty_notices"] == 8
    assert after["warehouse.events"] - before["warehouse.events"] == 2


def test_dry_run_and_only_select_one_rule(ws: Workspace) -> None:
    loyalty.award(ws, "u1", 100, key="u1:a")
    run(ws, date(2026, 1, 31), only="decay")
    assert notices(ws) == []  # no warning without the warn rule, so nothing to decay
    run(ws, date(2026, 1, 31), only="warn")
    only_recall = run(ws, date(2026, 2, 28), only="recall")
    assert [r.rule for r in only_recall.rows] == ["recall"]
    assert loyalty.account(ws, "u1").balance == 100
    only_decay = run(ws, date(2026, 2, 28), only="decay")
    assert [(r.rule, r.points) for r in only_decay.rows] == [("decay", 10)]
    with pytest.raises(ConfigError, match="only must be one of warn, decay, recall"):
        loyalty.loss_aversion(ws, only="expire")


# -- the state / warehouse pair -----------------------------------------------------------


def test_a_warning_whose_event_was_lost_is_written_by_the_next_run(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    loyalty.award(ws, "u1", 100, key="u1:a")
    import liucun.ingest

    def killed(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("killed between the state commit and the warehouse write")

    monkeypatch.setattr(liucun.ingest, "ingest_tables", killed)
    with pytest.raises(RuntimeError, match="killed"):
        run(ws, date(2026, 1, 31))
    monkeypatch.undo()
    assert len(notices(ws, "silence_warning")) == 1 and warnings_in_warehouse(ws) == []
    repaired = run(ws, date(2026, 2, 2))
    assert (repaired.counts["warn"], repaired.events) == (0, 1)  # no second warning
    (event,) = warnings_in_warehouse(ws)
    assert event["event_id"] == "loss:warn:default:u1:2026-01-01"
    assert event["ts"] == local(2026, 1, 31)  # as of the warning, not of the repair
    assert run(ws, date(2026, 2, 3)).events == 0
    assert len(warnings_in_warehouse(ws)) == 1


# -- boost_tier ---------------------------------------------------------------------------


def test_boost_tier_is_idempotent_and_opens_a_tier_row(ws: Workspace) -> None:
    until = local(2026, 2, 1)
    first = loyalty.boost_tier(ws, "u1", tier="尊享", until=until, key="promo-1")
    assert (first.base_tier, first.replayed) == ("基础", False)
    before = table_rows(ws)
    again = loyalty.boost_tier(ws, "u1", tier="尊享", until=until, key="promo-1")
    assert again.replayed and table_rows(ws) == before
    with pytest.raises(loyalty.IdempotencyConflict, match="tier"):
        loyalty.boost_tier(ws, "u1", tier="进阶", until=until, key="promo-1")
    with pytest.raises(ConfigError, match="no tier 'gold'"):
        loyalty.boost_tier(ws, "u1", tier="gold", until=until, key="promo-2")
    with pytest.raises(loyalty.LedgerError, match="already be over"):
        loyalty.boost_tier(ws, "u1", tier="进阶", until=T0 - timedelta(days=1), key="promo-3")
    with ws.state.read() as s:
        row = s.scalar(select(LoyaltyMemberTier))
        assert row is not None
        assert (row.user_id, row.tier, row.growth_in_window, row.tier_since) == (
            "u1",
            "基础",
            0.0,
            T0,
        )
        assert (row.boost_tier, row.boost_until) == ("尊享", until)
    assert table_rows(ws) == before


def test_check_names_a_decay_booked_on_another_program_account(ws: Workspace) -> None:
    loyalty.award(ws, "u1", 100, key="u1:a")
    run(ws, date(2026, 1, 31))
    run(ws, date(2026, 2, 28))
    assert loyalty.check(ws).ok
    with ws.state.write() as s:
        s.execute(
            update(LoyaltyEntry)
            .where(LoyaltyEntry.program_account == "decayed")
            .values(program_account="expired")
        )
    report = loyalty.check(ws)
    assert any(
        "loss:decay:default:u1:2026-01-01:1" in v and "'expired'" in v for v in report.violations
    )


# -- the CLI ------------------------------------------------------------------------------


def test_the_cli_previews_runs_and_prints_json(tmp_path: Path, state_url: str) -> None:
    import re

    from typer.testing import CliRunner

    from liucun.cli import app

    ansi = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

    def cli(*args: str) -> tuple[int, str]:
        """Exit code, and standard output (standard error when it failed)."""
        res = CliRunner().invoke(app, ["-w", str(tmp_path / "ws"), "loyalty", *args])
        assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
        return res.exit_code, ansi.sub("", res.stdout if res.exit_code == 0 else res.stderr)

    with program_workspace(tmp_path / "ws", state_url) as w:
        loyalty.award(w, "u1", 100, key="u1:a")
        loyalty.award(w, "u2", 40, key="u2:a")
    code, out = cli("loss-aversion", "--help")
    assert code == 0 and "Example:" in out and "--dry-run" in out
    code, out = cli("loss-aversion", "--as-of", "2026-01-31", "--dry-run", "--format", "json")
    assert code == 0
    preview = json.loads(out)
    assert (preview["dry_run"], preview["counts"], preview["events"]) == (
        True,
        {"warn": 2, "decay": 0, "recall": 0},
        2,
    )
    assert [(r["user_id"], r["points"], r["status"]) for r in preview["rows"]] == [
        ("u1", 100, "planned"),
        ("u2", 40, "planned"),
    ]
    code, out = cli("loss-aversion", "--as-of", "2026-01-31", "--only", "warn")
    assert code == 0
    assert "It did warn 2" in " ".join(out.split()) and "2 warning events" in " ".join(out.split())
    code, out = cli("loss-aversion", "--as-of", "2026-01-31", "--format", "json")
    assert json.loads(out)["rows"] == []
    code, out = cli("loss-aversion", "--as-of", "31/01/2026")
    assert code == 1 and "neither a day" in " ".join(out.split())
    code, out = cli("check")
    assert code == 0


def test_a_program_of_its_own_floors_exactly_and_turns_rules_off(
    tmp_path: Path, state_url: str
) -> None:
    """A UTC program warning after 10 days and decaying 29 % every 2 months, without a
    recall: 29 % of 100 is 29 (a float product would give 28.999… → 28)."""
    path = tmp_path / "program.yaml"
    path.write_text(
        "name: small shop\ncurrency: EUR\nloss_aversion:\n  silence_warning_days: 10\n"
        "  decay: {idle_months: 2, share: 0.29}\n",
        encoding="utf-8",
    )
    with program_workspace(tmp_path / "ws", state_url) as w:
        loyalty.apply_program(w, path)  # now in force instead of the example
        w.clock.set(T0 + timedelta(days=11))  # 12 January 02:00 UTC
        assert [r.points for r in loyalty.loss_aversion(w, as_of=date(2026, 1, 10)).rows] == []
        loyalty.award(w, "u1", 100, key="u1:a")  # 12 January (UTC): a new spell
        warned = loyalty.loss_aversion(w, as_of=date(2026, 1, 12)).rows
        assert warned == []
        w.clock.set(datetime(2026, 1, 22, 1, tzinfo=UTC))
        (warn,) = loyalty.loss_aversion(w).rows  # 10 days after 12 January
        assert (warn.details["decay_on"], warn.details["decay_points"]) == ("2026-03-22", 29)
        w.clock.set(datetime(2026, 3, 21, 23, tzinfo=UTC))
        assert loyalty.loss_aversion(w).rows == []
        w.clock.set(datetime(2026, 3, 22, 0, tzinfo=UTC))
        (decay,) = loyalty.loss_aversion(w).rows  # no recall in this program
        assert (decay.rule, decay.points) == ("decay", 29)
        assert loyalty.account(w, "u1").balance == 71
