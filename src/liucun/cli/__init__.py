"""The ``liucun`` command line: parse, call one library function with progress, render.

A :class:`~liucun.core.LiucunError` becomes one red sentence and exit code 1; a
traceback means a bug. One module per group of commands; importing them registers them.
"""

from liucun.cli import (  # noqa: F401  - importing registers the commands
    _accrue,
    _alerts,
    _analytics,
    _consent,
    _coupons,
    _delivery,
    _experiments,
    _funnel,
    _fx,
    _ingest,
    _journeys,
    _journeys_report,
    _journeys_run,
    _keys,
    _loss,
    _loyalty,
    _loyalty_summary,
    _members,
    _models,
    _program,
    _serve,
    _shop,
    _state,
    _tiers,
    _uplift,
    _web,
    _webhooks,
    _worker,
)
from liucun.cli._app import app, console


def main() -> None:
    """Entry point of the ``liucun`` script."""
    app()


__all__ = ["app", "console", "main"]
