"""Message templates: Jinja (sandboxed) with locale fallback, and the content check.

A message node's ``template`` holds Jinja text per locale::

    template:
      subject: {zh-CN: "{{ first_name }}，送您一张券", en: "A coupon for you"}
      body:
        zh-CN: "满59减{{ coupon_value }}，券码 {{ coupon_code }}。退订：{{ unsubscribe_url }}"
        en: "{{ coupon_value }} off with {{ coupon_code }}. Unsubscribe: {{ unsubscribe_url }}"

Rendering runs in Jinja's :class:`~jinja2.sandbox.SandboxedEnvironment` (a template
cannot reach Python internals) with :class:`~jinja2.StrictUndefined`, so a name that is
not a variable fails instead of printing nothing. The variables are
:data:`TEMPLATE_VARIABLES`: the customer's profile fields (:data:`PROFILE_FIELDS`),
``first_name``, and ``coupon_code``, ``coupon_value``, ``unsubscribe_url``,
``shop_name``; every one is always defined (None when unknown, printed as nothing), so
``{% if first_name %}`` is how a template handles a customer without one. Bodies are
plain text (no HTML escaping).

The locale is the customer's ``language`` exactly (``zh-CN``), then its base language
(``zh``), then any locale of that base (``zh-TW`` gets ``zh-CN``), then the template's
``default_locale``, then the first locale written.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateError, nodes
from jinja2.sandbox import SandboxedEnvironment

from liucun.core import Settings, close_match
from liucun.journeys._spec import JourneySpec, MessageNode, Template
from liucun.loyalty._program import UNLOCK_FIELDS

#: Fields a journey's profile filters (audience, branch ``when``, segment triggers,
#: wait_for ``filter``) may name, with their types: the loyalty unlock fields (a customer
#: profile of liucun.segments plus the loyalty account), the B2B attributes, the latest
#: scores (``churn_risk``, ``clv_365d``, ``p_alive``) and ``tags`` (the customer's tag
#: names, sorted and joined by commas). ``tag_NAME`` (a tag's value, NULL when the
#: customer has no tag NAME) may be named too: see :func:`profile_columns`.
PROFILE_FIELDS: dict[str, str] = {
    **UNLOCK_FIELDS,
    "account_id": "string",
    "company_size": "string",
    "industry": "string",
    "timezone": "string",
    "clv_365d": "float64",
    "p_alive": "float64",
    "tags": "string",
}

#: Variables a message template may use besides the profile fields.
MESSAGE_VARIABLES: tuple[str, ...] = (
    "first_name",
    "coupon_code",
    "coupon_value",
    "unsubscribe_url",
    "shop_name",
)
#: Every variable a template may use.
TEMPLATE_VARIABLES: tuple[str, ...] = (*PROFILE_FIELDS, *MESSAGE_VARIABLES)

#: The sample customer every template of a journey is rendered for at apply: each
#: profile field has a plausible value, so a template that names anything else fails.
TEST_CUSTOMER: dict[str, Any] = {
    "user_id": "test-customer",
    "first_name": "Li",
    "stage": "decline",
    "orders": 5,
    "days_since_last": 41.0,
    "cadence_days": 28.0,
    "recency_days": 41.0,
    "frequency": 5,
    "monetary": 812.5,
    "r_score": 2,
    "f_score": 4,
    "m_score": 4,
    "rfm_segment": "at_risk",
    "rfm_class": "important_retention",
    "social_actions": 3,
    "churn_risk": 0.64,
    "customer_type": "b2c",
    "country": "CN",
    "region": "east",
    "language": "zh-CN",
    "acquisition_channel": "organic",
    "tier": "进阶",
    "growth_value": 1320,
    "points_balance": 860,
    "is_member": True,
    "plan": "plus_yearly",
    "account_id": "acct-test",
    "company_size": "10-49",
    "industry": "retail",
    "timezone": "Asia/Shanghai",
    "clv_365d": 1480.0,
    "p_alive": 0.71,
    "tags": "vip",
}
#: The message variables rendered with :data:`TEST_CUSTOMER` at apply.
TEST_EXTRA: dict[str, Any] = {
    "coupon_code": "TEST-COUPON-0001",
    "coupon_value": "10",
    "unsubscribe_url": "https://example.invalid/unsubscribe/test-customer",
    "shop_name": "Test Shop",
}


@dataclass(frozen=True)
class Rendered:
    """A message as sent: ``subject`` (None when the template has none), ``body``, and
    the ``locale`` that was used."""

    subject: str | None
    body: str
    locale: str


def _finalize(value: Any) -> Any:
    return "" if value is None else value


_ENV = SandboxedEnvironment(
    undefined=StrictUndefined, autoescape=False, finalize=_finalize, keep_trailing_newline=True
)


@functools.lru_cache(maxsize=4096)
def _compiled(source: str) -> Any:
    return _ENV.from_string(source)


def render_text(source: str, variables: Mapping[str, Any]) -> str:
    """One Jinja ``source`` rendered with ``variables`` (every template variable is
    defined, None when ``variables`` lacks it); raises :class:`jinja2.TemplateError`."""
    return str(_compiled(source).render({**dict.fromkeys(TEMPLATE_VARIABLES), **variables}))


def _norm(locale: str) -> str:
    return locale.replace("_", "-").lower()


def choose_locale(available: Sequence[str], language: str | None, default: str) -> str:
    """The locale of ``available`` for a customer speaking ``language`` (module
    docstring: exact, base, same base, ``default``, first). Comparisons ignore case
    and treat ``_`` as ``-``."""
    if not available:
        raise ValueError("a template needs at least one locale")
    by_norm = {_norm(a): a for a in available}
    if language:
        wanted = _norm(str(language))
        if wanted in by_norm:
            return by_norm[wanted]
        base = wanted.split("-")[0]
        if base in by_norm:
            return by_norm[base]
        for a in available:
            if _norm(a).split("-")[0] == base:
                return a
    if _norm(default) in by_norm:
        return by_norm[_norm(default)]
    return available[0]


def render_message(
    template: Template, customer: Mapping[str, Any], *, extra: Mapping[str, Any]
) -> Rendered:
    """``template`` for ``customer`` (a profile row: user_id, language, …) with the
    message variables in ``extra`` (coupon_code, coupon_value, unsubscribe_url,
    shop_name); the locale follows the customer's ``language`` (module docstring).

    Raises :class:`jinja2.TemplateError` when the template names an unknown variable
    or fails otherwise.
    """
    variables = {**customer, **extra}
    locale = choose_locale(list(template.body), customer.get("language"), template.default_locale)
    subject = None
    if template.subject:
        subject_locale = choose_locale(
            list(template.subject), customer.get("language"), template.default_locale
        )
        subject = render_text(template.subject[subject_locale], variables)
    return Rendered(subject, render_text(template.body[locale], variables), locale)


# -- checks at apply and approve --------------------------------------------------------


def _texts(spec: JourneySpec) -> Iterator[tuple[int, MessageNode, str, str, str]]:
    """Every template text: (node index, node, part (subject/body), locale, source)."""
    for i, node in enumerate(spec.nodes):
        if isinstance(node, MessageNode):
            for part in ("subject", "body"):
                for locale, source in (getattr(node.template, part) or {}).items():
                    yield i, node, part, locale, source


def render_problems(spec: JourneySpec) -> list[str]:
    """A sentence per template text that does not render for :data:`TEST_CUSTOMER`,
    naming its YAML path and Jinja's error."""
    out: list[str] = []
    for i, _node, part, locale, source in _texts(spec):
        try:
            render_text(source, {**TEST_CUSTOMER, **TEST_EXTRA})
        except TemplateError as exc:
            out.append(
                f"nodes[{i}].template.{part}.{locale}: does not render for the test "
                f"customer: {_jinja_error(exc)}"
            )
    return out


def _jinja_error(exc: TemplateError) -> str:
    text = str(exc.message or exc).strip()
    line = getattr(exc, "lineno", None)
    where = f" (template line {line})" if line else ""
    if "is undefined" in text:
        name = text.split("'")[1] if text.count("'") >= 2 else ""
        near = close_match(name, TEMPLATE_VARIABLES)
        tip = f"did you mean {near}?" if near else "use a variable of docs/journeys.md"
        names = ", ".join(MESSAGE_VARIABLES)
        return f"{text}{where}; {tip} (variables: {names} and the profile fields)"
    return f"{text}{where}; fix the Jinja syntax"


def requires_unsubscribe(settings: Settings, channel: str) -> bool:
    """Whether messages on ``channel`` must carry an unsubscribe link:
    ``[channels.X] requires_unsubscribe``, by default true for email only."""
    configured = settings.channels.get(channel)
    if configured is not None and configured.requires_unsubscribe is not None:
        return configured.requires_unsubscribe
    return channel == "email"


def prints_variable(source: str, name: str) -> bool:
    """Whether the Jinja ``source`` outputs variable ``name`` (``{{ name }}``, with or
    without filters); False when it does not parse."""
    try:
        tree = _ENV.parse(source)
    except TemplateError:
        return False
    return any(
        n.name == name for out in tree.find_all(nodes.Output) for n in out.find_all(nodes.Name)
    )


def content_problems(spec: JourneySpec, settings: Settings) -> list[str]:
    """The content check approval runs: a sentence per template text that contains a
    forbidden phrase (``[guards] forbidden_phrases``, case-insensitive, in the text as
    written or as rendered for the test customer) and per message body of a channel that
    requires an unsubscribe link (:func:`requires_unsubscribe`) that does not output
    ``{{ unsubscribe_url }}``."""
    out: list[str] = []
    phrases = [p for p in settings.guards.forbidden_phrases if p.strip()]
    for i, node, part, locale, source in _texts(spec):
        where = f"nodes[{i}].template.{part}.{locale}"
        if phrases:
            try:
                rendered = render_text(source, {**TEST_CUSTOMER, **TEST_EXTRA})
            except TemplateError:
                rendered = ""
            seen = (source + "\n" + rendered).casefold()
            for phrase in phrases:
                if phrase.casefold() in seen:
                    out.append(
                        f"{where}: contains the forbidden phrase {phrase!r} ([guards] "
                        "forbidden_phrases in liucun.toml); reword the text"
                    )
        if (
            part == "body"
            and requires_unsubscribe(settings, node.channel)
            and not prints_variable(source, "unsubscribe_url")
        ):
            out.append(
                f"{where}: {node.channel} messages need an unsubscribe link; add "
                "{{ unsubscribe_url }} to the text (or set [channels."
                f"{node.channel}] requires_unsubscribe = false in liucun.toml)"
            )
    return out
