"""The segment filter language: a small, typed expression language that picks customers.

Users type a filter such as::

    stage in ("decline", "churned") and churn_risk > 0.7 and country is not null

and :func:`parse_filter` turns it into an Ibis boolean expression over a given table, to be
used as ``table.filter(expr)``. The parser is hand-written recursive descent: no ``eval``,
no SQL text, no third-party parser. Values become Ibis literals, so a quoted string can
never change the shape of the query.

Grammar (keywords are case-insensitive, field names case-sensitive)::

    filter     := or_expr EOF
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | "(" or_expr ")" | comparison
    comparison := FIELD ( OP value
                        | ["not"] "in" "(" value ("," value)* [","] ")"
                        | "between" value "and" value          # inclusive
                        | "is" ["not"] "null" )
    OP         := "==" | "=" | "!=" | "<" | "<=" | ">" | ">="
    value      := STRING | NUMBER | "true" | "false"
    STRING     := '...' | "..."   with backslash escapes \\' \\" \\\\
    NUMBER     := -?digits[.digits][e[+-]digits] | -?.digits[...]
    FIELD      := [A-Za-z_][A-Za-z0-9_]*   (a column of the table, not a keyword)

Nulls follow SQL: a comparison with a null field is unknown, and ``not`` of unknown is
unknown, so such rows are not selected; ask for them with ``is null``.

Limits: at most :data:`MAX_LENGTH` characters and :data:`MAX_DEPTH` levels of nesting
(parentheses and ``not``); NUL characters are refused (SQL engines truncate at them).
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

import ibis.expr.types as ir

from liucun.core._errors import LiucunError

__all__ = ["MAX_DEPTH", "MAX_LENGTH", "FilterSyntaxError", "parse_filter"]

#: Longest filter text accepted, in characters.
MAX_LENGTH = 10_000
#: Deepest nesting of parentheses and ``not`` accepted.
MAX_DEPTH = 100

_KEYWORDS = frozenset({"and", "or", "not", "in", "between", "is", "null", "true", "false"})
_COMPARISONS = ("==", "!=", "<=", ">=", "<", ">", "=")
_OPERATORS_HINT = "==, !=, <, <=, >, >=, in, not in, between, is null, is not null"
_IN_HINT = '\'in\' needs a parenthesised list, e.g. country in ("DE", "FR")'
_INT64_MAX = 2**63 - 1

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_SPACE = re.compile(r"[ \t\r\n\f\v]+")
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t"}


class FilterSyntaxError(LiucunError, ValueError):
    """A segment filter cannot be read; the message says where and what was expected.

    Attributes:
        position: 0-based character offset in ``text`` where the problem is.
        text: the filter as given.
    """

    def __init__(self, message: str, *, position: int, text: str) -> None:
        super().__init__(message)
        self.position = position
        self.text = text


Kind = Literal["ident", "keyword", "string", "number", "op", "(", ")", ",", "end"]
Scalar = str | int | float | bool


@dataclass(frozen=True, slots=True)
class _Token:
    kind: Kind
    value: Scalar | None
    pos: int
    src: str  # the characters as typed, for messages

    def describe(self) -> str:
        return "end of filter" if self.kind == "end" else repr(self.src)


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if m := _SPACE.match(text, i):
            i = m.end()
        elif ch in "'\"":
            value, end = _read_string(text, i)
            tokens.append(_Token("string", value, i, text[i:end]))
            i = end
        elif m := _IDENT.match(text, i):
            word = m.group()
            if word.lower() in _KEYWORDS:
                tokens.append(_Token("keyword", word.lower(), i, word))
            else:
                tokens.append(_Token("ident", word, i, word))
            i = m.end()
        elif m := _NUMBER.match(text, i):
            tokens.append(_Token("number", _read_number(m.group(), i, text), i, m.group()))
            i = m.end()
        elif ch in "(),":
            tokens.append(_Token(ch, ch, i, ch))  # type: ignore[arg-type]
            i += 1
        else:
            op = next((o for o in _COMPARISONS if text.startswith(o, i)), None)
            if op is None:
                hint = "; use 'not' for negation" if ch == "!" else ""
                raise FilterSyntaxError(
                    f"unexpected character {ch!r} at position {i}{hint}", position=i, text=text
                )
            tokens.append(_Token("op", "==" if op == "=" else op, i, op))
            i += len(op)
    tokens.append(_Token("end", None, n, ""))
    return tokens


def _read_string(text: str, start: int) -> tuple[str, int]:
    quote, i = text[start], start + 1
    out: list[str] = []
    while i < len(text):
        ch = text[i]
        if ch == quote:
            return "".join(out), i + 1
        if ch == "\\":
            nxt = text[i + 1] if i + 1 < len(text) else ""
            if nxt not in _ESCAPES:
                raise FilterSyntaxError(
                    f"unknown escape '\\{nxt}' at position {i}; "
                    "use \\' \\\" \\\\ \\n or \\t inside quotes",
                    position=i,
                    text=text,
                )
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            out.append(ch)
            i += 1
    raise FilterSyntaxError(
        f"unterminated string starting at position {start}; close it with {quote}",
        position=start,
        text=text,
    )


def _read_number(src: str, pos: int, text: str) -> int | float:
    if re.fullmatch(r"-?[0-9]+", src):
        value = int(src)
        if abs(value) > _INT64_MAX:
            raise FilterSyntaxError(
                f"number {src} at position {pos} is outside the 64-bit integer range",
                position=pos,
                text=text,
            )
        return value
    number = float(src)
    if not math.isfinite(number):
        raise FilterSyntaxError(
            f"number {src} at position {pos} is too large", position=pos, text=text
        )
    return number


def _balanced(op: str, terms: list[ir.BooleanValue]) -> ir.BooleanValue:
    """Combine with ``&`` or ``|`` as a balanced tree, so long chains stay shallow."""
    while len(terms) > 1:
        pairs = [
            (terms[k] & terms[k + 1]) if op == "and" else (terms[k] | terms[k + 1])
            for k in range(0, len(terms) - 1, 2)
        ]
        terms = pairs + ([terms[-1]] if len(terms) % 2 else [])
    return terms[0]


class _Parser:
    def __init__(self, text: str, table: ir.Table) -> None:
        self.text = text
        self.table = table
        self.schema = table.schema()
        self.tokens = _tokenize(text)
        self.i = 0
        self.depth = 0

    # -- helpers ---------------------------------------------------------------------
    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def advance(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def at_keyword(self, word: str) -> bool:
        return self.tok.kind == "keyword" and self.tok.value == word

    def error(self, head: str, tok: _Token | None = None, tail: str = "") -> FilterSyntaxError:
        """``{head} at position N{tail}``: one line, the position where the reader looks."""
        pos = (tok or self.tok).pos
        return FilterSyntaxError(f"{head} at position {pos}{tail}", position=pos, text=self.text)

    def unexpected(self, expected: str, tail: str = "") -> FilterSyntaxError:
        return self.error(f"unexpected {self.tok.describe()}", tail=f"; expected {expected}{tail}")

    def enter(self, tok: _Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"filter nests deeper than {MAX_DEPTH} levels", tok)

    # -- grammar ---------------------------------------------------------------------
    def parse(self) -> ir.BooleanValue:
        if self.tok.kind == "end":
            raise self.error("empty filter", tail='; write a condition such as country == "DE"')
        expr = self.or_expr()
        if self.tok.kind != "end":
            if self.tok.kind == ")":
                raise self.error("unexpected ')'", tail="; it has no matching '('")
            raise self.unexpected("'and', 'or' or the end of the filter")
        return expr

    def or_expr(self) -> ir.BooleanValue:
        terms = [self.and_expr()]
        while self.at_keyword("or"):
            self.advance()
            terms.append(self.and_expr())
        return _balanced("or", terms)

    def and_expr(self) -> ir.BooleanValue:
        terms = [self.not_expr()]
        while self.at_keyword("and"):
            self.advance()
            terms.append(self.not_expr())
        return _balanced("and", terms)

    def not_expr(self) -> ir.BooleanValue:
        tok = self.tok
        if self.at_keyword("not"):
            self.advance()
            self.enter(tok)
            inner = self.not_expr()
            self.depth -= 1
            return ~inner
        if tok.kind == "(":
            self.advance()
            self.enter(tok)
            inner = self.or_expr()
            if self.tok.kind != ")":
                raise self.unexpected("')'", f" to close the '(' opened at position {tok.pos}")
            self.advance()
            self.depth -= 1
            return inner
        return self.comparison()

    def comparison(self) -> ir.BooleanValue:
        tok = self.tok
        if tok.kind != "ident":
            if tok.kind == "keyword":
                raise self.error(f"expected a field name, got the keyword {tok.describe()}")
            raise self.unexpected("a field name")
        self.advance()
        name = str(tok.value)
        if name not in self.schema:
            raise self.error(f"unknown field '{name}'", tok, self._unknown_field_hint(name))
        column = self.table[name]
        op = self.tok
        if op.kind == "op":
            self.advance()
            value = self.value(f"after '{op.src}'")
            return self.compare(column, tok, str(op.value), value)
        if self.at_keyword("in"):
            self.advance()
            return column.isin(self.value_list(column, tok))
        if self.at_keyword("not"):
            self.advance()
            if not self.at_keyword("in"):
                raise self.unexpected("'in' after 'not' (write 'not in (...)')")
            self.advance()
            return column.notin(self.value_list(column, tok))
        if self.at_keyword("between"):
            self.advance()
            low = self.value("after 'between'")
            if not self.at_keyword("and"):
                raise self.unexpected("'and' in 'between A and B'")
            self.advance()
            high = self.value("after 'and' in 'between A and B'")
            return column.between(self.literal(column, tok, low), self.literal(column, tok, high))
        if self.at_keyword("is"):
            self.advance()
            negate = self.at_keyword("not")
            if negate:
                self.advance()
            if not self.at_keyword("null"):
                raise self.unexpected("'null' after 'is'" if not negate else "'null'")
            self.advance()
            return column.notnull() if negate else column.isnull()
        raise self.unexpected(f"an operator ({_OPERATORS_HINT}) after {tok.describe()}")

    def value(self, where: str) -> tuple[Scalar, _Token]:
        tok = self.tok
        if tok.kind in ("string", "number"):
            self.advance()
            return tok.value, tok  # type: ignore[return-value]
        if tok.kind == "keyword" and tok.value in ("true", "false"):
            self.advance()
            return tok.value == "true", tok
        if tok.kind == "keyword" and tok.value == "null":
            raise self.error("null is not a value", tail="; write 'is null' or 'is not null'")
        if tok.kind == "ident":
            raise self.error(
                f"expected a value {where}",
                tail=f', got {tok.describe()}; quote text, e.g. "{tok.src}"',
            )
        raise self.error(f"expected a value {where}", tail=f", got {tok.describe()}")

    def value_list(self, column: ir.Column, field: _Token) -> list[object]:
        if self.tok.kind != "(":
            raise self.error(_IN_HINT)
        self.advance()
        values = [self.literal(column, field, self.value("in the 'in' list"))]
        while self.tok.kind == ",":
            self.advance()
            if self.tok.kind == ")":  # trailing comma
                break
            values.append(self.literal(column, field, self.value("after ','")))
        if self.tok.kind != ")":
            raise self.unexpected("',' or ')' in the 'in' list")
        self.advance()
        return values

    # -- typing ----------------------------------------------------------------------
    def literal(self, column: ir.Column, field: _Token, value: tuple[Scalar, _Token]) -> object:
        """Check ``value`` against the column type; return the Python value to compare."""
        raw, tok = value
        dtype = column.type()
        name = field.src
        if dtype.is_string():
            if isinstance(raw, str):
                return raw
            raise self.error(
                f"field '{name}' is {dtype} but {tok.describe()} is not text",
                tok,
                f'; quote it, e.g. {name} == "{tok.src}"',
            )
        if dtype.is_boolean():
            if isinstance(raw, bool):
                return raw
            raise self.error(f"field '{name}' is {dtype}", tok, "; compare it with true or false")
        if dtype.is_numeric():
            if isinstance(raw, (int, float)) and not isinstance(raw, bool):
                return raw
            raise self.error(
                f"field '{name}' is {dtype} but {tok.describe()} is not a number",
                tok,
                "; write numbers without quotes",
            )
        if dtype.is_date() or dtype.is_timestamp():
            parse = date.fromisoformat if dtype.is_date() else datetime.fromisoformat
            if isinstance(raw, str):
                try:
                    return parse(raw)
                except ValueError:
                    pass
            raise self.error(
                f"field '{name}' is {dtype} but {tok.describe()} is not a quoted ISO date",
                tok,
                '; write e.g. "2024-01-31"',
            )
        raise self.error(f"field '{name}' is {dtype}", field, ", which filters cannot compare")

    def compare(
        self, column: ir.Column, field: _Token, op: str, value: tuple[Scalar, _Token]
    ) -> ir.BooleanValue:
        lit = self.literal(column, field, value)
        if column.type().is_boolean() and op not in ("==", "!="):
            raise self.error(f"field '{field.src}' is boolean", field, "; use == or != with it")
        match op:
            case "==":
                return column == lit
            case "!=":
                return column != lit
            case "<":
                return column < lit
            case "<=":
                return column <= lit
            case ">":
                return column > lit
            case _:
                return column >= lit

    def _unknown_field_hint(self, name: str) -> str:
        fields = list(self.schema.names)
        close = difflib.get_close_matches(name, fields, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        listed = ", ".join(fields[:30]) + (", …" if len(fields) > 30 else "")
        return f"{hint} (fields: {listed})"


def parse_filter(text: str, table: ir.Table) -> ir.BooleanValue:
    """Parse a segment filter into an Ibis boolean expression over ``table``.

    Args:
        text: the filter, e.g. ``'stage in ("decline", "churned") and churn_risk > 0.7'``.
        table: the Ibis table whose columns the filter names.

    Returns:
        An unexecuted boolean expression; select rows with ``table.filter(expr)``.

    Raises:
        FilterSyntaxError: the text is empty, too long or too deep, malformed, names an
            unknown field, or compares a field with a value of the wrong type.
    """
    if not isinstance(text, str):
        raise TypeError(f"filter text must be a str, not {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise FilterSyntaxError(
            f"filter is {len(text)} characters long; the limit is {MAX_LENGTH} "
            f"(first excess character at position {MAX_LENGTH})",
            position=MAX_LENGTH,
            text=text,
        )
    if (nul := text.find("\x00")) >= 0:
        raise FilterSyntaxError(
            f"NUL character at position {nul}; remove it", position=nul, text=text
        )
    return _Parser(text, table).parse()
