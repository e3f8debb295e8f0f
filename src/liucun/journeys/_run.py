"""Run the engine over simulated time: ``liucun journeys run --until DATE``.

The workspace clock becomes a :class:`~liucun.core.SimulatedClock` (at the workspace's
now: the CLI's ``--now``, e.g. the data end of a simulated shop) and moves by ``step``
until ``until``. Each step first lets a :class:`World` — the simulated customers —
write what happened in it (their orders, visits, reactions to what was sent), then runs
:func:`liucun.journeys._worker.work_once` at the step's end. Event triggers run when the
warehouse changed; time triggers (inactivity, stages, birthdays …) once per simulated
day, so 60 days of a 50,000-customer shop take minutes, not hours.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from liucun.core import ConfigError, SimulatedClock, as_utc
from liucun.journeys._worker import WorkSummary, work_once


@runtime_checkable
class World(Protocol):
    """Simulated customers that act between two ticks of the engine."""

    def advance(self, ws: Any, until: datetime) -> int:
        """Write into ``ws``'s warehouse what the customers did up to ``until`` (UTC),
        reacting to what the outbox sent them; return how many events were written."""
        ...


@dataclass
class RunResult:
    """What :func:`run_until` did, summed over its steps."""

    start: datetime
    until: datetime
    steps: int = 0
    world_events: int = 0
    entries: int = 0
    enrolled: int = 0
    control: int = 0
    walked: int = 0
    outbox: int = 0
    converted: int = 0
    finished: int = 0
    step_kinds: dict[str, int] = field(default_factory=dict)

    def add(self, s: WorkSummary) -> None:
        self.steps += 1
        self.entries += s.entries
        self.enrolled += s.enrolled
        self.control += s.control
        self.walked += s.walked
        self.outbox += s.outbox
        self.converted += s.converted
        self.finished += s.finished
        for k, v in s.steps.items():
            self.step_kinds[k] = self.step_kinds.get(k, 0) + v

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "until": self.until.isoformat(),
            "steps": self.steps,
            "world_events": self.world_events,
            "entries": self.entries,
            "enrolled": self.enrolled,
            "control": self.control,
            "walked": self.walked,
            "outbox": self.outbox,
            "converted": self.converted,
            "finished": self.finished,
            "step_kinds": self.step_kinds,
        }


def load_world(path: Any) -> World:
    """The simulator's responsive world for the simulation in ``path``
    (``liucun.simulate.responsive_world``), refused with a sentence while it is missing."""
    try:
        from liucun.simulate import responsive_world  # type: ignore[attr-defined]
    except ImportError:
        raise ConfigError(
            "this liucun has no responsive world (liucun.simulate.responsive_world); run "
            "without --world, or upgrade liucun"
        ) from None
    return responsive_world(path)  # type: ignore[no-any-return]


def simulated_clock(ws: Any) -> SimulatedClock:
    """The workspace's clock as a simulated one (replaced by one at its now if not)."""
    if not isinstance(ws.clock, SimulatedClock):
        ws.clock = SimulatedClock(ws.clock.now())
    return ws.clock  # type: ignore[no-any-return]


def run_until(
    ws: Any,
    until: datetime,
    *,
    step: timedelta = timedelta(hours=1),
    world: World | None = None,
    worker_id: str = "journeys-run",
    time_every: timedelta = timedelta(days=1),
    deliver: bool = True,
    on_step: Callable[[datetime, WorkSummary], None] | None = None,
) -> RunResult:
    """Advance the workspace's simulated clock by ``step`` up to ``until``, letting
    ``world`` act and the engine work at the end of each step."""
    if step <= timedelta(0):
        raise ConfigError(f"--step must be positive, got {step}")
    clock = simulated_clock(ws)
    start = clock.now()
    until = as_utc(until)
    if until <= start:
        raise ConfigError(
            f"--until {until:%Y-%m-%d %H:%M} is not after the workspace's now "
            f"({start:%Y-%m-%d %H:%M} UTC); pass a later date or an earlier --now"
        )
    result = RunResult(start=start, until=until)
    memo: dict[str, Any] = {}
    t = start
    while t < until:
        t = min(t + step, until)
        clock.set(t)
        if world is not None:
            result.world_events += int(world.advance(ws, t) or 0)
        summary = work_once(
            ws, worker_id=worker_id, now=t, time_every=time_every, deliver=deliver, state=memo
        )
        result.add(summary)
        if on_step is not None:
            on_step(t, summary)
    return result
