"""Journeys in state on SQLite and PostgreSQL: apply versions a file once per content,
the lifecycle refuses illegal moves with the allowed ones, activation needs an approval
that passed the content check, and ``migrate: true`` moves only the enrolments whose
node exists in the new version."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from liucun.core import ConfigError, SimulatedClock
from liucun.journeys import (
    JourneyError,
    activate_journey,
    apply_journey,
    approve_journey,
    archive_journey,
    journey_source,
    journey_status,
    journey_version,
    journey_versions,
    list_journeys,
    pause_journey,
    resume_journey,
)
from liucun.state import AuditEntry, JourneyApproval, JourneyEnrolment, JourneyVersion
from liucun.workspace import Workspace, init_workspace

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)

V1 = """\
name: comeback
# a comment
trigger: {type: inactivity, days: 3}
nodes:
  - {id: push, type: message, channel: push, template: {body: {en: "Back?"}}, next: wait}
  - {id: wait, type: wait_for, event: order, timeout: 4d, on_timeout: mail}
  - id: mail
    type: message
    channel: email
    template:
      subject: {en: "A gift"}
      body: {en: "Come back. Unsubscribe: {{ unsubscribe_url }}"}
"""
# the same content, laid out differently
V1_AGAIN = """\
trigger:
  days: 3
  type: inactivity
name: comeback
nodes:
  - {type: message, id: push, channel: push, next: wait, template: {body: {en: "Back?"}}}
  - {id: wait, type: wait_for, timeout: 4d, event: order, on_timeout: mail}
  - {id: mail, type: message, channel: email, template: {subject: {en: "A gift"},
     body: {en: "Come back. Unsubscribe: {{ unsubscribe_url }}"}}}
"""
# v2: the push goes, the wait and mail stay; customers inside move
V2 = """\
name: comeback
trigger: {type: inactivity, days: 3}
migrate: true
nodes:
  - {id: wait, type: wait_for, event: visit, timeout: 5d, on_timeout: mail}
  - id: mail
    type: message
    channel: email
    template:
      subject: {en: "A gift"}
      body: {en: "Come back. Unsubscribe: {{ unsubscribe_url }}"}
"""


@pytest.fixture
def ws(tmp_path: Path, state_url: str) -> Iterator[Workspace]:
    with init_workspace(tmp_path / "ws", state_url=state_url, clock=SimulatedClock(T0)) as w:
        yield w


def _count(ws: Workspace, model: type) -> int:
    with ws.state.read() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _actions(ws: Workspace) -> list[str]:
    with ws.state.read() as s:
        rows = s.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    return [a for a in rows if a.startswith("journey.")]


def test_apply_is_idempotent_per_content_and_bumps_on_change(ws: Workspace) -> None:
    dry = apply_journey(ws, V1, dry_run=True)
    assert (dry.version, dry.created, dry.dry_run, dry.status) == (1, True, True, "draft")
    assert _count(ws, JourneyVersion) == 0
    first = apply_journey(ws, V1, by="ana")
    assert (first.name, first.version, first.created) == ("comeback", 1, True)
    assert first.status == "draft"
    assert set(first.changes) >= {"name", "trigger", "nodes", "control"}
    again = apply_journey(ws, V1_AGAIN)
    assert (again.version, again.created, again.digest) == (1, False, first.digest)
    assert _count(ws, JourneyVersion) == 1
    second = apply_journey(ws, V2)
    assert (second.version, second.created, second.changes) == (2, True, ("migrate", "nodes"))
    assert _count(ws, JourneyVersion) == 2
    assert journey_source(ws, "comeback", 1) == V1  # the YAML as applied
    with ws.state.read() as s:
        row = s.scalar(select(JourneyVersion).where(JourneyVersion.version == 1))
        assert row is not None
        assert (row.created_by, row.created_at, row.migrate) == ("ana", T0, False)
        assert json.loads(row.definition)["control"] == {"allow_zero": False, "share": 0.1}
    assert _actions(ws) == ["journey.apply", "journey.apply"]


def test_a_bad_file_is_refused_and_writes_nothing(ws: Workspace) -> None:
    with pytest.raises(JourneyError, match=r"trigger\.event: 'ordr' is not an event type"):
        apply_journey(ws, V1.replace("{type: inactivity, days: 3}", "{type: event, event: ordr}"))
    assert _count(ws, JourneyVersion) == 0 and list_journeys(ws) == []


def test_lifecycle(ws: Workspace) -> None:
    apply_journey(ws, V1)
    with pytest.raises(ConfigError) as refused:
        activate_journey(ws, "comeback")
    assert str(refused.value) == (
        "version 1 of journey 'comeback' has no approval; approve it first: liucun journeys "
        "approve comeback --by WHO"
    )
    with pytest.raises(ConfigError, match="'comeback' is draft; pause works on an active journey"):
        pause_journey(ws, "comeback")
    ws.clock.advance(timedelta(hours=1))  # type: ignore[attr-defined]
    approval = approve_journey(ws, "comeback", by="li.wei", note="legal ok")
    assert (approval.version, approval.approved_by, approval.note, approval.created) == (
        1,
        "li.wei",
        "legal ok",
        True,
    )
    assert approval.approved_at == T0 + timedelta(hours=1)
    assert approve_journey(ws, "comeback", by="someone else").created is False
    assert _count(ws, JourneyApproval) == 1
    assert journey_status(ws, "comeback").status == "approved"
    with pytest.raises(ConfigError, match="has no active version"):
        journey_version(ws, "comeback")
    active = activate_journey(ws, "comeback")
    assert (active.status, active.active_version, active.changed) == ("active", 1, True)
    assert activate_journey(ws, "comeback").changed is False
    assert journey_version(ws, "comeback").nodes[0].id == "push"
    with pytest.raises(ConfigError) as refused:
        archive_journey(ws, "comeback")
    assert str(refused.value) == (
        "journey 'comeback' is active; archive works on a draft, approved or paused journey; "
        "pause it first (liucun journeys pause comeback)"
    )
    assert pause_journey(ws, "comeback").status == "paused"
    assert pause_journey(ws, "comeback").changed is False
    with pytest.raises(ConfigError, match="paused at its latest version 1; resume it"):
        activate_journey(ws, "comeback")
    assert resume_journey(ws, "comeback").status == "active"
    pause_journey(ws, "comeback")
    assert archive_journey(ws, "comeback").status == "archived"
    with pytest.raises(ConfigError, match="is archived; resume works on a paused journey"):
        resume_journey(ws, "comeback")
    with pytest.raises(ConfigError, match="archived journeys stay archived"):
        apply_journey(ws, V2)
    with pytest.raises(ConfigError, match="archived journeys stay archived"):
        approve_journey(ws, "comeback", by="x")
    assert _actions(ws) == [
        "journey.apply",
        "journey.approve",
        "journey.activate",
        "journey.pause",
        "journey.resume",
        "journey.pause",
        "journey.archive",
    ]
    with ws.state.read() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "journey.approve"))
        assert entry is not None and entry.target == "journey:comeback"
        details = json.loads(entry.details or "{}")
        assert details == {"by": "li.wei", "note": "legal ok", "version": 1}


def test_unknown_journey_names_the_known_ones(ws: Workspace) -> None:
    with pytest.raises(ConfigError, match=r"no journey named 'x'.*none is applied yet"):
        approve_journey(ws, "x", by="a")
    apply_journey(ws, V1)
    with pytest.raises(ConfigError, match=r"no journey named 'comebak'.*did you mean comeback"):
        activate_journey(ws, "comebak")


def test_a_new_version_of_an_active_journey_is_a_draft_until_activated(ws: Workspace) -> None:
    apply_journey(ws, V1)
    approve_journey(ws, "comeback", by="a")
    activate_journey(ws, "comeback")
    applied = apply_journey(ws, V2)
    assert (applied.version, applied.status, applied.active_version) == (2, "active", 1)
    status = journey_status(ws, "comeback")
    assert (status.latest_version, status.active_version, status.latest_approved) == (2, 1, False)
    assert journey_version(ws, "comeback").nodes[0].id == "push"  # v1 keeps running
    assert journey_version(ws, "comeback", 2).nodes[0].id == "wait"
    with pytest.raises(ConfigError, match="version 2 of journey 'comeback' has no approval"):
        activate_journey(ws, "comeback")
    with pytest.raises(ConfigError, match="version 1 is not the latest version"):
        approve_journey(ws, "comeback", by="a", version=1)
    approve_journey(ws, "comeback", by="b", version=2)
    assert [v["state"] for v in journey_versions(ws, "comeback")] == ["active", "approved"]
    assert activate_journey(ws, "comeback").active_version == 2
    assert [v["state"] for v in journey_versions(ws, "comeback")] == ["superseded", "active"]


def test_an_approved_draft_goes_back_to_draft_on_a_new_version(ws: Workspace) -> None:
    apply_journey(ws, V1)
    approve_journey(ws, "comeback", by="a")
    assert apply_journey(ws, V2).status == "draft"
    with pytest.raises(ConfigError, match="version 2 of journey 'comeback' has no approval"):
        activate_journey(ws, "comeback")


def test_content_check_refuses_approval(ws: Workspace) -> None:
    ws.settings.guards.forbidden_phrases.append("come BACK")
    applied = apply_journey(ws, V1)
    assert applied.warnings == (
        "nodes[2].template.body.en: contains the forbidden phrase 'come BACK' ([guards] "
        "forbidden_phrases in liucun.toml); reword the text",
    )
    with pytest.raises(JourneyError) as refused:
        approve_journey(ws, "comeback", by="a")
    assert refused.value.problems == list(applied.warnings)
    assert str(refused.value).startswith("journey 'comeback' version 1 fails the content check")
    ws.settings.guards.forbidden_phrases.clear()
    no_link = V1.replace("Unsubscribe: {{ unsubscribe_url }}", "Bye")
    apply_journey(ws, no_link)
    with pytest.raises(JourneyError, match="email messages need an unsubscribe link"):
        approve_journey(ws, "comeback", by="a")
    assert _count(ws, JourneyApproval) == 0


def _enrol(ws: Workspace, user: str, node: str, status: str = "active") -> None:
    with ws.state.write() as s:
        s.add(
            JourneyEnrolment(
                journey="comeback",
                version=1,
                user_id=user,
                entry_key="once",
                arm="treatment",
                node=node,
                status=status,
                wake_at=T0,
                waiting_for="order" if node == "wait" else None,
                context="{}",
                entered_at=T0,
                updated_at=T0,
            )
        )


def _enrolments(ws: Workspace) -> dict[str, tuple[int, str | None]]:
    with ws.state.read() as s:
        rows = s.scalars(select(JourneyEnrolment)).all()
        return {r.user_id: (r.version, r.waiting_for) for r in rows}


@pytest.mark.parametrize("migrate", [True, False])
def test_migrate_moves_only_live_enrolments_whose_node_exists(ws: Workspace, migrate: bool) -> None:
    apply_journey(ws, V1)
    approve_journey(ws, "comeback", by="a")
    activate_journey(ws, "comeback")
    _enrol(ws, "at_push", "push")  # push is gone in v2: finishes on v1
    _enrol(ws, "waiting", "wait", status="waiting")
    _enrol(ws, "at_mail", "mail")
    _enrol(ws, "finished", "mail", status="done")  # history never moves
    apply_journey(ws, V2 if migrate else V2.replace("migrate: true\n", ""))
    approve_journey(ws, "comeback", by="a")
    result = activate_journey(ws, "comeback")
    if migrate:
        assert result.migrated == 2
        assert _enrolments(ws) == {
            "at_push": (1, None),
            "waiting": (2, "visit"),  # waits for what v2's node waits for
            "at_mail": (2, None),
            "finished": (1, None),
        }
    else:
        assert result.migrated == 0
        assert {v for v, _ in _enrolments(ws).values()} == {1}
    with ws.state.read() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "journey.activate"))
        details = [
            json.loads(e.details or "{}")
            for e in s.scalars(select(AuditEntry).where(AuditEntry.action == "journey.activate"))
        ]
    assert entry is not None
    assert details[-1] == {
        "migrated": 2 if migrate else 0,
        "previous_version": 1,
        "version": 2,
    }


def test_list_journeys(ws: Workspace) -> None:
    apply_journey(ws, V1)
    apply_journey(ws, V1.replace("name: comeback", "name: another"))
    approve_journey(ws, "another", by="a")
    rows = list_journeys(ws)
    assert [(r.name, r.status, r.latest_approved, r.trigger, r.purpose) for r in rows] == [
        ("another", "approved", True, "inactivity", "marketing"),
        ("comeback", "draft", False, "inactivity", "marketing"),
    ]


def test_concurrent_applies_get_distinct_versions(ws: Workspace) -> None:
    from concurrent.futures import ThreadPoolExecutor

    texts = [V1.replace('"Back?"', f'"Back? {i}"') for i in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda t: apply_journey(ws, t), texts))
    assert sorted(r.version for r in results) == [1, 2, 3, 4]
    assert all(r.created for r in results)
    status = journey_status(ws, "comeback")
    assert (status.latest_version, status.status) == (4, "draft")
    assert _count(ws, JourneyVersion) == 4
