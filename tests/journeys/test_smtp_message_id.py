"""The Message-ID of an outbox key survives Python's e-mail generator and parser whole
(a ``:`` in the key used to cut the header to ``<j`` for every journey message, so all
of them shared one Message-ID)."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

from hypothesis import given
from hypothesis import strategies as st

from liucun.journeys._channels import message_id


def _round_trip(mid: str) -> tuple[str, str]:
    mail = EmailMessage()
    mail["Message-ID"] = mid
    mail["To"] = "a@example.test"
    mail.set_content("x")
    raw = mail.as_bytes()
    return message_from_bytes(raw)["Message-ID"], message_from_bytes(raw, policy=policy.default)[
        "Message-ID"
    ]


def test_journey_and_alert_keys_keep_distinct_whole_message_ids() -> None:
    keys = ["j:winback:12:mail:1", "j:winback:13:mail:1", "alert:7:raised:email:staff:ab12"]
    ids = [message_id(k) for k in keys]
    assert ids == [
        "<j.winback.12.mail.1@liucun>",
        "<j.winback.13.mail.1@liucun>",
        "<alert.7.raised.email.staff.ab12@liucun>",
    ]
    for mid in ids:
        assert _round_trip(mid) == (mid, mid)


@given(st.text(alphabet="abcXYZ019:-_.@<> ", min_size=1, max_size=40))
def test_any_key_gives_a_message_id_that_round_trips(key: str) -> None:
    mid = message_id(key)
    assert _round_trip(mid) == (mid, mid)
