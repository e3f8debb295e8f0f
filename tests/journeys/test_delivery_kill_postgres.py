"""kill -9 of a delivery worker on PostgreSQL: the scenario of test_delivery_kill.py
(300 webhooks and 30 e-mails, the worker SIGKILLed three times at random moments)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_delivery_kill import kill_scenario

from state_backends import postgres_schema_url


@pytest.mark.postgres
def test_sigkill_on_postgresql_loses_nothing_and_sends_no_email_twice(tmp_path: Path) -> None:
    with postgres_schema_url() as url:
        outcome = kill_scenario(tmp_path, url)
    assert outcome == {"webhooks_sent": 300, "emails_settled": 30, "kills": 3}
