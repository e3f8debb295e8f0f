"""The segment filter language on eight hand-made customers, run on DuckDB."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd
import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st

from liucun.core import LiucunError
from liucun.segments._filter import MAX_DEPTH, MAX_LENGTH, FilterSyntaxError, parse_filter

PROPERTY = settings(derandomize=True, max_examples=200, deadline=None)

CUSTOMERS = pd.DataFrame(
    {
        "user_id": [1, 2, 3, 4, 5, 6, 7, 8],
        "country": ["DE", "DE", "CN", "FR", None, "CN", "US", "DE"],
        "stage": ["decline", "churned", "active", "decline", "churned", "new", "active", "decline"],
        "rfm_segment": [
            "At Risk",
            "At Risk",
            "Champions",
            "Can't Lose Them",
            "At Risk",
            "Champions",
            "Loyal",
            "At Risk",
        ],
        "frequency": [5, 1, 10, 3, 2, 1, 4, 3],
        "monetary": [250.0, 50.0, 1000.0, 99.5, 100.5, 20.0, 300.0, 120.0],
        "churn_risk": [0.8, 0.9, 0.1, 0.75, 0.72, 0.2, 0.5, 0.3],
        "last_order_days": [45, 120, 5, 30, 90, 91, 60, 29],
        "email_hash": ["h1", None, "h3", "h4", None, "h6", "h7", "h8"],
        "is_vip": [False, False, True, False, False, False, True, False],
        "first_order": pd.to_datetime(
            [
                "2023-01-05",
                "2023-03-01",
                "2022-11-11",
                "2024-02-29",
                "2024-06-01",
                "2024-07-15",
                "2021-12-31",
                "2024-05-31",
            ]
        ),
    }
)
FIELDS = ", ".join(CUSTOMERS.columns)


@pytest.fixture(scope="module")
def customers() -> ir.Table:
    con = ibis.duckdb.connect()
    return con.create_table("customers", CUSTOMERS)


@pytest.fixture(scope="module")
def scratch() -> ibis.BaseBackend:
    """A DuckDB connection for one-row tables holding the hostile value itself."""
    return ibis.duckdb.connect()


def selected(table: ir.Table, text: str) -> set[int]:
    expr = parse_filter(text, table)
    return set(table.filter(expr).user_id.execute().tolist())


# -- selection ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the examples users type
        (
            'stage in ("decline", "churned") and rfm_segment == "At Risk" and country == "DE"',
            {1, 2, 8},
        ),
        ("frequency >= 3 and not (monetary < 100.5 or country != 'CN')", {3}),
        ("churn_risk > 0.7 and last_order_days between 30 and 90", {1, 4, 5}),
        ("country is null", {5}),
        ("email_hash is not null", {1, 3, 4, 6, 7, 8}),
        ("rfm_segment in ('Champions', \"Can't Lose Them\")", {3, 4, 6}),
        # precedence: and binds tighter than or, not tighter than and
        ('country == "CN" or stage == "decline" and frequency > 4', {1, 3, 6}),
        ('(country == "CN" or stage == "decline") and frequency > 4', {1, 3}),
        ('not country == "DE" and frequency < 3', {6}),
        ('not (country == "DE" and frequency < 3)', {1, 3, 4, 6, 7, 8}),
        ("not not is_vip == true", {3, 7}),
        # every comparison operator; '=' is '=='
        ("frequency == 3", {4, 8}),
        ("frequency = 3", {4, 8}),
        ("frequency != 3", {1, 2, 3, 5, 6, 7}),
        ("frequency < 3", {2, 5, 6}),
        ("frequency <= 3", {2, 4, 5, 6, 8}),
        ("frequency > 4", {1, 3}),
        ("frequency>=4", {1, 3, 7}),
        ('stage not in ("decline", "active")', {2, 5, 6}),
        ('country in ("DE", "FR",)', {1, 2, 4, 8}),
        # between is inclusive at both ends, numbers may be negative, decimal or exponent
        ("monetary between 99.5 and 100.5", {4, 5}),
        ("last_order_days between 30 and 30", {4}),
        ("churn_risk > -1 and monetary >= 1e3", {3}),
        ("churn_risk < .25", {3, 6}),
        # SQL nulls: a comparison with a null field never selects the row, even under not
        ('country != "DE"', {3, 4, 6, 7}),
        ('not country == "DE"', {3, 4, 6, 7}),
        ('country is null or country == "FR"', {4, 5}),
        # keywords are case-insensitive, fields are not
        ('stage In ("decline") AnD frequency BETWEEN 3 aNd 5 OR country IS NULL', {1, 4, 5, 8}),
        ("email_hash IS NOT NULL and is_vip == TRUE", {3, 7}),
        ("is_vip != false", {3, 7}),
        # quotes and escapes
        ("rfm_segment == 'Can\\'t Lose Them'", {4}),
        ('rfm_segment == "Can\\"t Lose Them"', set()),
        ("rfm_segment == 'Can\\\\t Lose Them'", set()),
        ("  country\n==\t'CN'  ", {3, 6}),
        # timestamps compare with quoted ISO dates
        ('first_order >= "2024-02-29"', {4, 5, 6, 8}),
        ('first_order between "2023-01-01" and "2023-12-31 23:59:59"', {1, 2}),
    ],
)
def test_filter_selects_expected_customers(
    customers: ir.Table, text: str, expected: set[int]
) -> None:
    assert selected(customers, text) == expected


def test_parse_returns_unexecuted_boolean_expression(customers: ir.Table) -> None:
    expr = parse_filter('country == "DE"', customers)
    assert isinstance(expr, ir.BooleanValue)
    assert "WHERE" in ibis.to_sql(customers.filter(expr))


def test_long_flat_chains_are_fine(customers: ir.Table) -> None:
    """A 500-term 'or' chain parses (no recursion per term) and runs."""
    text = " or ".join(f"frequency == {i}" for i in range(500))
    assert len(text) <= MAX_LENGTH
    assert selected(customers, text) == set(range(1, 9))


def test_max_depth_is_allowed(customers: ir.Table) -> None:
    text = "(" * MAX_DEPTH + "frequency > 4" + ")" * MAX_DEPTH
    assert selected(customers, text) == {1, 3}


# -- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "match", "position"),
    [
        (
            "contry == 'DE'",
            r"^unknown field 'contry' at position 0; did you mean 'country'\? \(fields: user_id, ",
            0,
        ),
        ("frequency > 1 and Country is null", r"unknown field 'Country' at position 18", 18),
        ("zzz is null", r"^unknown field 'zzz' at position 0 \(fields: ", 0),
        ("frequency >= 3 && country == 'DE'", r"unexpected character '&' at position 15", 15),
        ("frequency ! 3", r"unexpected character '!' at position 10; use 'not'", 10),
        ("country == 'DE", r"^unterminated string starting at position 11", 11),
        ('country == "DE\\"', r"^unterminated string starting at position 11", 11),
        ("country == 'D\\E'", r"unknown escape '\\E' at position 13", 13),
        ("country ==", r"^expected a value after '==' at position 10, got end of filter", 10),
        ("country == and", r"expected a value after '==' at position 11, got 'and'", 11),
        ("country == DE", r"expected a value after '==' at position 11, got 'DE'; quote", 11),
        ("country == null", r"null is not a value at position 11; write 'is null'", 11),
        ("country", r"unexpected end of filter at position 7; expected an operator", 7),
        ("country 'DE'", r"unexpected \"'DE'\" at position 8; expected an operator", 8),
        (
            "(country == 'DE' or frequency > 3",
            r"unexpected end of filter at position 33; expected '\)' to close the '\(' opened "
            r"at position 0",
            33,
        ),
        ("country == 'DE')", r"^unexpected '\)' at position 15; it has no matching '\('", 15),
        ("()", r"unexpected '\)' at position 1; expected a field name", 1),
        ("country == 'DE' frequency > 3", r"unexpected 'frequency' at position 16", 16),
        ("and country is null", r"expected a field name, got the keyword 'and' at position 0", 0),
        ("country == 'DE' or", r"unexpected end of filter at position 18; expected a field", 18),
        ("", r"^empty filter at position 0", 0),
        ("   \n ", r"^empty filter at position 5", 5),
        ("country in 'DE'", r"'in' needs a parenthesised list, e.g. country in \(", 11),
        ("country in ()", r"expected a value in the 'in' list at position 12", 12),
        ("country in ('DE' 'FR')", r"expected ',' or '\)' in the 'in' list", 17),
        ("country not 'DE'", r"expected 'in' after 'not'", 12),
        ("frequency between 1 or 3", r"unexpected 'or' at position 20; expected 'and'", 20),
        ("country is 'DE'", r"unexpected \"'DE'\" at position 11; expected 'null'", 11),
        ("country is not 3", r"unexpected '3' at position 15; expected 'null'", 15),
        # type mismatches name the field and its type
        ("country > 3", r"field 'country' is string but '3' is not text at position 10", 10),
        ("frequency == '3'", r"field 'frequency' is int64 but \"'3'\" is not a number", 13),
        ("monetary between 1 and 'x'", r"field 'monetary' is float64 but \"'x'\"", 23),
        ("stage in ('new', 1)", r"field 'stage' is string but '1' is not text at position 17", 17),
        ("is_vip == 1", r"field 'is_vip' is boolean at position 10; compare it with true", 10),
        ("is_vip < true", r"field 'is_vip' is boolean at position 0; use == or !=", 0),
        ("country == true", r"field 'country' is string but 'true' is not text", 11),
        (
            "first_order > 'last week'",
            r"field 'first_order' is timestamp.* is not a quoted ISO date at position 14",
            14,
        ),
        ("frequency > 99999999999999999999", r"outside the 64-bit integer range", 12),
        ("monetary > 1e999", r"number 1e999 at position 11 is too large", 11),
        ("country == 'a\x00b'", r"NUL character at position 13", 13),
    ],
)
def test_errors_point_at_the_problem(
    customers: ir.Table, text: str, match: str, position: int
) -> None:
    with pytest.raises(FilterSyntaxError, match=match) as info:
        parse_filter(text, customers)
    assert info.value.position == position
    assert info.value.text == text
    assert "\n" not in str(info.value)


def test_error_is_a_liucun_value_error(customers: ir.Table) -> None:
    with pytest.raises(FilterSyntaxError) as info:
        parse_filter("nope", customers)
    assert isinstance(info.value, LiucunError)
    assert isinstance(info.value, ValueError)


def test_unknown_field_lists_all_fields(customers: ir.Table) -> None:
    with pytest.raises(FilterSyntaxError) as info:
        parse_filter("contry is null", customers)
    assert str(info.value).endswith(f"(fields: {FIELDS})")


@pytest.mark.parametrize(
    ("text", "match", "position"),
    [
        ("(" * (MAX_DEPTH + 1) + "country is null" + ")" * (MAX_DEPTH + 1), "deeper than 100", 100),
        ("(" * 5000, "deeper than 100", 100),
        ("not " * 2000 + "country is null", "deeper than 100", 400),
        ("(not " * 60 + "country is null" + ")" * 60, "deeper than 100", 250),
        ("frequency == 1 or " * 600 + "country is null", r"limit is 10000", MAX_LENGTH),
    ],
)
def test_limits_raise_filter_errors_not_recursion_errors(
    customers: ir.Table, text: str, match: str, position: int
) -> None:
    with pytest.raises(FilterSyntaxError, match=match) as info:
        parse_filter(text, customers)
    assert info.value.position == position


# -- properties --------------------------------------------------------------------------

TOKENS = [
    *CUSTOMERS.columns,
    "contry",
    "and",
    "OR",
    "not",
    "In",
    "between",
    "is",
    "null",
    "true",
    "false",
    "==",
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "(",
    ")",
    ",",
    "'DE'",
    '"At Risk"',
    "'unterminated",
    "3",
    "-2.5",
    "1e3",
    "!",
    "\\",
    "'",
]


@PROPERTY
@given(
    text=st.one_of(
        st.text(max_size=200),
        st.lists(st.sampled_from(TOKENS), max_size=25).map(" ".join),
        st.lists(st.sampled_from(TOKENS), max_size=25).map("".join),
    )
)
def test_any_text_parses_or_raises_filter_syntax_error(customers: ir.Table, text: str) -> None:
    try:
        expr = parse_filter(text, customers)
    except FilterSyntaxError as err:
        assert 0 <= err.position <= len(text)
        assert err.text == text
        assert "\n" not in str(err)
    else:
        assert isinstance(expr, ir.BooleanValue)


HOSTILE = [
    "'; DROP TABLE customers; --",
    '"; DROP TABLE customers; --',
    "DE' OR '1'='1",
    'DE" OR "1"="1',
    "\\",
    "\\'",
    "'",
    '"',
    "''",
    "Robert'); DELETE FROM customers WHERE ('1' = '1",
    "$$; SELECT 1; $$",
    "🙂 中文 é",
    "\u202e\u2028",
    "DE",
    "CN",
    "",
]


def _quote(value: str, quote: str) -> str:
    return quote + value.replace("\\", "\\\\").replace(quote, "\\" + quote) + quote


@PROPERTY
@given(
    value=st.one_of(
        st.sampled_from(HOSTILE),
        st.text(
            alphabet=st.sampled_from(list("'\";-\\/*$%\x00 DEORSLCTN1=()\n\t中🙂")), max_size=40
        ),
        st.text(max_size=40),
    ),
    quote=st.sampled_from(["'", '"']),
)
def test_hostile_strings_are_plain_literals(
    customers: ir.Table, scratch: ibis.BaseBackend, value: str, quote: str
) -> None:
    text = f"country == {_quote(value, quote)}"
    if "\x00" in value:  # SQL engines cut strings at NUL, so the parser refuses it up front
        with pytest.raises(FilterSyntaxError, match="NUL character") as info:
            parse_filter(text, customers)
        assert text[info.value.position] == "\x00"
        return
    expr = parse_filter(text, customers)
    rows = customers.filter(expr)
    expected = set(CUSTOMERS.user_id[CUSTOMERS.country == value])
    assert set(rows.user_id.execute().tolist()) == expected
    assert len(sqlglot.parse(ibis.to_sql(rows), read="duckdb")) == 1
    assert customers.count().execute() == len(CUSTOMERS)
    # the literal decodes to exactly the value: a row holding it is selected, its neighbour not
    holder = scratch.create_table(
        "holder",
        pd.DataFrame({"user_id": [1, 2], "country": [value, value + "x"]}),
        overwrite=True,
    )
    assert selected(holder, text) == {1}


NUMERIC = ["frequency", "monetary", "churn_risk", "last_order_days"]
TEXT = ["country", "stage", "rfm_segment", "email_hash"]
OPS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@st.composite
def condition(draw: st.DrawFn) -> tuple[str, pd.Series]:
    """A simple condition as filter text, and the rows it selects as a pandas mask."""
    kind = draw(st.sampled_from(["num", "text", "in", "between", "null"]))
    if kind in ("num", "between"):
        field = draw(st.sampled_from(NUMERIC))
        col = CUSTOMERS[field]
        number = st.one_of(
            st.sampled_from(col.tolist()),
            st.integers(-5, 1200),
            st.floats(-5, 1200, allow_nan=False).map(lambda x: round(x, 3)),
        )
        if kind == "between":
            low, high = draw(number), draw(number)
            return f"{field} between {low} and {high}", col.between(low, high) & col.notna()
        op, value = draw(st.sampled_from(list(OPS))), draw(number)
        return f"{field} {op} {value}", OPS[op](col, value) & col.notna()
    field = draw(st.sampled_from(TEXT))
    col = CUSTOMERS[field]
    no_nul = st.characters(exclude_characters="\x00")
    words = st.one_of(st.sampled_from(col.dropna().tolist()), st.text(no_nul, max_size=5))
    if kind == "null":
        negate = draw(st.booleans())
        return f"{field} is {'not ' if negate else ''}null", col.notna() if negate else col.isna()
    if kind == "in":
        values = draw(st.lists(words, min_size=1, max_size=4))
        negate = draw(st.booleans())
        listed = ", ".join(_quote(v, draw(st.sampled_from("'\""))) for v in values)
        mask = col.isin(values)
        # SQL: 'not in' with a null field is unknown, so the row is not selected
        mask = (~mask if negate else mask) & col.notna()
        return f"{field} {'not ' if negate else ''}in ({listed})", mask
    op, value = draw(st.sampled_from(list(OPS))), draw(words)
    quoted = _quote(value, draw(st.sampled_from("'\"")))
    return f"{field} {op} {quoted}", OPS[op](col, value) & col.notna()


@PROPERTY
@given(
    first=condition(),
    rest=st.lists(st.tuples(st.sampled_from(["and", "or", "AND", "Or"]), condition()), max_size=3),
)
def test_round_trip_matches_pandas(
    customers: ir.Table, first: tuple[str, pd.Series], rest: list[tuple[str, tuple[str, pd.Series]]]
) -> None:
    """Without 'not', SQL's unknown selects like false, so null rows simply drop out."""
    text, mask = first
    # build 'or' of 'and'-groups the way the grammar does, to mirror precedence in pandas
    groups, group = [], mask
    for word, part in rest:
        part_text, part_mask = part
        text = f"{text} {word} {part_text}"
        if word.lower() == "and":
            group = group & part_mask
        else:
            groups.append(group)
            group = part_mask
    groups.append(group)
    expected_mask = groups[0]
    for g in groups[1:]:
        expected_mask = expected_mask | g
    assert selected(customers, text) == set(CUSTOMERS.user_id[expected_mask])
