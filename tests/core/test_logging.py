"""Logging: text or JSON Lines on stderr, configured only by the application, and no
contact data in any record."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liucun.core import (
    ConfigError,
    JsonFormatter,
    RedactContactData,
    configure_logging,
    logging_configured,
    redact_contact_data,
)

EMAIL, PHONE = "li.wei+vip@example.com.cn", "+86 138-0013-8000"


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    log = logging.getLogger("liucun.test_logging")
    yield log
    root = logging.getLogger("liucun")
    for h in [h for h in root.handlers if h.get_name() == "liucun"]:
        root.removeHandler(h)
    root.setLevel(logging.NOTSET)


def _emit(log: logging.Logger, fmt: str, level: str = "info") -> list[str]:
    stream = io.StringIO()
    configure_logging(fmt, level, stream=stream)  # type: ignore[arg-type]
    log.info(
        "customer %s wrote from %s",
        EMAIL,
        PHONE,
        extra={"source": f"crm:{EMAIL}", "rows": 12},
    )
    try:
        raise ValueError(f"bad row {EMAIL}")
    except ValueError:
        log.warning("rejected a row of %s", "users.csv", exc_info=True)
    return stream.getvalue().splitlines()


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_contact_data_is_redacted_in_both_formats(logger: logging.Logger, fmt: str) -> None:
    lines = _emit(logger, fmt)
    text = "\n".join(lines)
    assert EMAIL not in text and "138" not in text and "8000" not in text
    assert "customer [email] wrote from [phone]" in text
    assert "bad row [email]" in text  # the traceback too


def test_json_lines_carry_level_logger_message_and_extras(logger: logging.Logger) -> None:
    first, *rest = _emit(logger, "json")
    record = json.loads(first)
    assert list(record)[:4] == ["ts", "level", "logger", "message"]
    assert record["ts"].endswith("Z") and record["ts"][10] == "T"
    assert (record["level"], record["logger"]) == ("info", "liucun.test_logging")
    assert record["message"] == "customer [email] wrote from [phone]"
    assert (record["source"], record["rows"]) == ("crm:[email]", 12)
    warning = json.loads("\n".join(rest))  # one object, even with a traceback inside
    assert warning["level"] == "warning" and "ValueError: bad row [email]" in warning["exc"]


def test_text_lines_and_levels(logger: logging.Logger) -> None:
    lines = _emit(logger, "text", level="warning")
    assert lines[0] == "WARNING liucun.test_logging: rejected a row of users.csv"
    assert not any("customer" in line for line in lines)  # info is below the level


def test_configuring_twice_keeps_one_handler(logger: logging.Logger) -> None:
    configure_logging("text")
    configure_logging("json", "debug")
    ours = [h for h in logging.getLogger("liucun").handlers if h.get_name() == "liucun"]
    assert len(ours) == 1 and isinstance(ours[0].formatter, JsonFormatter)
    assert any(isinstance(f, RedactContactData) for f in ours[0].filters)
    assert logging.getLogger("liucun").level == logging.DEBUG
    with pytest.raises(ConfigError, match="log format 'xml' is unknown") as err:
        configure_logging("xml")  # type: ignore[arg-type]
    assert err.value.hint is not None and err.value.hint.option == "log_format"
    with pytest.raises(ConfigError, match="log level 'loud'"):
        configure_logging("text", "loud")


def test_a_block_of_configured_logging_restores_the_logger(logger: logging.Logger) -> None:
    root = logging.getLogger("liucun")
    stream = io.StringIO()
    with logging_configured("json", "info", stream=stream):
        logger.info("inside %s", "the block")
    logger.warning("after the block")
    assert [json.loads(line)["message"] for line in stream.getvalue().splitlines()] == [
        "inside the block"
    ]
    assert root.level == logging.NOTSET and not [h for h in root.handlers if h.get_name()]


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-03 08:41:31 loaded 18,079 rows",
        "2026-12-03T08:41:31.052Z",
        "between 2024-01-01 and 2024-12-31",
        "p = 0.0001234, ratio 1.129411764705882",
        "sum 12345678901.5 of 1234567 orders",
        "user u13812345678, hash a3f9123456789b0c, version 1.2.3, host 10.0.0.1",
    ],
)
def test_what_is_not_contact_data_is_kept(text: str) -> None:
    assert redact_contact_data(text) == text


@pytest.mark.parametrize(
    "phone",
    [
        "+8613812345678",
        "13812345678",
        "138-1234-5678",
        "+1 (415) 555-0100",
        "(415) 555-0100",
        "020 7946 0958",
        "+49-30-1234567",
        "415.555.0100",
    ],
)
def test_phone_numbers_in_common_forms_are_redacted(phone: str) -> None:
    assert redact_contact_data(f"call {phone}. Thanks") == "call [phone]. Thanks"


@settings(derandomize=True, max_examples=200, deadline=None)
@given(
    local=st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,15}", fullmatch=True),
    domain=st.from_regex(r"[a-z0-9]{1,10}(\.[a-z0-9]{1,8}){0,2}\.[a-z]{2,6}", fullmatch=True),
    before=st.sampled_from(["", "to ", "<", "mail=", "(", "customer "]),
    after=st.sampled_from(["", ".", ">", " sent", ")", ", next"]),
)
def test_every_email_address_is_redacted(local: str, domain: str, before: str, after: str) -> None:
    address = f"{local}@{domain}"
    out = redact_contact_data(f"{before}{address}{after}")
    assert address not in out and "@" not in out and "[email]" in out
