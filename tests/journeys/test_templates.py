"""Message templates: locale fallback by the customer's language, strict and sandboxed
Jinja, the test customer, and the content check (forbidden phrases, unsubscribe links)."""

from __future__ import annotations

import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jinja2 import TemplateError
from jinja2.exceptions import SecurityError

from liucun.core import ChannelSettings, Settings
from liucun.journeys import (
    PROFILE_FIELDS,
    TEST_CUSTOMER,
    choose_locale,
    content_problems,
    load_journey,
    render_message,
    requires_unsubscribe,
)
from liucun.journeys._spec import Template

T = Template(
    subject={"zh-CN": "{{ first_name }}，您好", "en": "Hello {{ first_name }}"},
    body={"zh-CN": "券码 {{ coupon_code }}", "en": "Code {{ coupon_code }}", "fr": "Code"},
)
EXTRA = {"coupon_code": "C1"}


@pytest.mark.parametrize(
    ("language", "locale", "body"),
    [
        ("zh-CN", "zh-CN", "券码 C1"),
        ("zh-cn", "zh-CN", "券码 C1"),  # tags compare without case
        ("zh_CN", "zh-CN", "券码 C1"),
        ("zh-TW", "zh-CN", "券码 C1"),  # no zh-TW, no zh: another locale of the base
        ("zh", "zh-CN", "券码 C1"),
        ("fr-CA", "fr", "Code"),  # the base language
        ("de", "en", "Code C1"),  # default_locale
        (None, "en", "Code C1"),
    ],
)
def test_locale_fallback(language: str | None, locale: str, body: str) -> None:
    out = render_message(T, {"first_name": "Li", "language": language}, extra=EXTRA)
    assert (out.locale, out.body) == (locale, body)


def test_exact_base_beats_a_sibling_and_first_is_last_resort() -> None:
    assert choose_locale(["zh-TW", "zh", "en"], "zh-HK", "en") == "zh"
    assert choose_locale(["zh-TW", "zh-CN"], "zh-CN", "en") == "zh-CN"
    assert choose_locale(["ja", "ko"], "de", "en") == "ja"
    with pytest.raises(ValueError, match="at least one locale"):
        choose_locale([], "en", "en")


@given(language=st.sampled_from(["zh-CN", "zh-TW", "zh", "en", "en-GB", "de", "ja", ""]))
def test_the_subject_follows_the_body_locale_when_both_have_it(language: str) -> None:
    out = render_message(T, {"first_name": "Li", "language": language}, extra=EXTRA)
    assert out.subject == ("Li，您好" if out.locale == "zh-CN" else "Hello Li")


def test_unknown_variables_fail_and_missing_values_print_nothing() -> None:
    with pytest.raises(TemplateError, match="'fist_name' is undefined"):
        render_message(Template(body={"en": "{{ fist_name }}"}), {}, extra={})
    out = render_message(
        Template(body={"en": "Hi{% if first_name %} {{ first_name }}{% endif %}[{{ tier }}]"}),
        {"language": "en"},
        extra={},
    )
    assert out.body == "Hi[]" and out.subject is None


def test_the_sandbox_refuses_python_internals() -> None:
    with pytest.raises(SecurityError):
        render_message(
            Template(body={"en": "{{ ''.__class__.__mro__[1].__subclasses__() }}"}), {}, extra={}
        )


def test_the_test_customer_has_every_profile_field() -> None:
    assert set(PROFILE_FIELDS) <= set(TEST_CUSTOMER)


def _spec(body: str, channel: str = "email", subject: str = "Hi") -> object:
    return load_journey(
        textwrap.dedent(
            f"""\
            name: t
            trigger: {{type: inactivity, days: 3}}
            nodes:
              - id: m
                type: message
                channel: {channel}
                template:
                  subject: {{en: "{subject}"}}
                  body: {{en: "{body}", zh-CN: "{body} 退订 {{{{ unsubscribe_url }}}}"}}
            """
        )
    )


def test_content_check_forbidden_phrases_any_case_any_locale() -> None:
    settings = Settings(guards={"forbidden_phrases": ["Guaranteed", "100% free"]})
    spec = _spec("GUARANTEED results {{ unsubscribe_url }}", subject="100% FREE")
    assert content_problems(spec, settings) == [  # type: ignore[arg-type]
        "nodes[0].template.subject.en: contains the forbidden phrase '100% free' ([guards] "
        "forbidden_phrases in liucun.toml); reword the text",
        "nodes[0].template.body.en: contains the forbidden phrase 'Guaranteed' ([guards] "
        "forbidden_phrases in liucun.toml); reword the text",
        "nodes[0].template.body.zh-CN: contains the forbidden phrase 'Guaranteed' ([guards] "
        "forbidden_phrases in liucun.toml); reword the text",
    ]
    # a phrase assembled by Jinja is found in the rendered text
    hidden = _spec("{{ 'guaran' ~ 'teed' }} {{ unsubscribe_url }}")
    assert len(content_problems(hidden, settings)) == 2  # type: ignore[arg-type]
    assert content_problems(hidden, Settings()) == []  # type: ignore[arg-type]


def test_content_check_unsubscribe_link() -> None:
    spec = _spec("no link here")
    assert content_problems(spec, Settings()) == [  # type: ignore[arg-type]
        "nodes[0].template.body.en: email messages need an unsubscribe link; add "
        "{{ unsubscribe_url }} to the text (or set [channels.email] requires_unsubscribe = "
        "false in liucun.toml)"
    ]
    # a filter on the variable still prints it; a mere mention in a condition does not
    assert content_problems(_spec("{{ unsubscribe_url | trim }}"), Settings()) == []  # type: ignore[arg-type]
    cond = _spec("{% if unsubscribe_url %}x{% endif %}")
    assert len(content_problems(cond, Settings())) == 1  # type: ignore[arg-type]
    # sms needs none by default; a channel setting turns the rule on or off
    assert content_problems(_spec("no link", channel="sms"), Settings()) == []  # type: ignore[arg-type]
    strict = Settings(channels={"sms": ChannelSettings(requires_unsubscribe=True)})
    assert requires_unsubscribe(strict, "sms") and not requires_unsubscribe(Settings(), "sms")
    assert len(content_problems(_spec("no link", channel="sms"), strict)) == 1  # type: ignore[arg-type]
    lax = Settings(channels={"email": ChannelSettings(requires_unsubscribe=False)})
    assert content_problems(spec, lax) == []  # type: ignore[arg-type]


_LOCALES = st.sampled_from(["zh-CN", "zh-TW", "zh", "en", "en-GB", "de", "ja", "fr-CA"])


@given(available=st.lists(_LOCALES, min_size=1, max_size=5, unique=True), language=_LOCALES)
def test_the_chosen_locale_is_offered_and_exact_wins(available: list[str], language: str) -> None:
    chosen = choose_locale(available, language, "en")
    assert chosen in available
    if language in available:
        assert chosen == language
    elif language.split("-")[0] in available:
        assert chosen == language.split("-")[0]
    elif not any(a.split("-")[0] == language.split("-")[0] for a in available):
        assert chosen == ("en" if "en" in available else available[0])
