"""A strict reader for the subset of YAML that program files use.

The project's environment has no YAML library, and a program file needs little of YAML:
block mappings and sequences, ``key: value`` lines, one-line flow collections
(``[a, b]``, ``{points: 1, growth: 1}``), quoted and plain scalars and ``#`` comments.
This reader takes exactly that and refuses the rest with the line number: anchors and
aliases, tags, block scalars (``|``, ``>``), several documents, tabs in indentation,
and duplicate keys (which YAML libraries silently resolve to the last one).

Plain scalars are typed like YAML 1.2's core schema: ``null``/``~``, ``true``/``false``,
integers and floats; everything else, dates included, stays a string (the program's
models parse dates themselves).

>>> read_yaml_text("a: 1\\nb:\\n  - x\\n  - {y: 2}\\n")
{'a': 1, 'b': ['x', {'y': 2}]}
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from liucun.core import InvalidInput

_INT = re.compile(r"[-+]?[0-9]+")
_FLOAT = re.compile(r"[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)(?:[eE][-+]?[0-9]+)?")
_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "/": "/", "0": "\0"}


class YamlSubsetError(InvalidInput):
    """A program file uses YAML this reader does not take, or is malformed."""


@dataclass
class _Line:
    number: int
    indent: int
    text: str


def read_yaml_text(text: str, *, source: str = "<text>") -> Any:
    """The value of a YAML document in the subset described in the module docstring."""
    lines = _lines(text, source)
    if not lines:
        return None
    reader = _Reader(lines, source)
    value = reader.node(0, lines[0].indent)
    if reader.i < len(lines):
        bad = lines[reader.i]
        reader.fail(bad, "this line is indented less than the block it belongs to")
    return value


def _lines(text: str, source: str) -> list[_Line]:
    out: list[_Line] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        body = _strip_comment(raw).rstrip()
        if not body.strip():
            continue
        stripped = body.lstrip(" ")
        if stripped.startswith("\t") or "\t" in body[: len(body) - len(stripped)]:
            raise YamlSubsetError(f"{source}, line {number}: indent with spaces, not tabs")
        if stripped in ("---", "...") and not out:
            continue
        if stripped in ("---", "..."):
            raise YamlSubsetError(
                f"{source}, line {number}: one program per file; remove the second document"
            )
        out.append(_Line(number, len(body) - len(stripped), stripped))
    return out


def _strip_comment(line: str) -> str:
    """``line`` without a ``#`` comment (a ``#`` inside quotes or a word is kept)."""
    quote, pos = "", 0
    while pos < len(line):
        ch = line[pos]
        if quote:
            if ch == "\\" and quote == '"':
                pos += 1  # the escaped character cannot close the string
            elif ch == quote:
                quote = ""
        elif ch in "\"'" and (pos == 0 or line[pos - 1] in " \t:[{,-"):
            quote = ch
        elif ch == "#" and (pos == 0 or line[pos - 1] in " \t"):
            return line[:pos]
        pos += 1
    return line


def _is_item(text: str) -> bool:
    return text == "-" or text.startswith("- ")


class _Reader:
    def __init__(self, lines: list[_Line], source: str) -> None:
        self.lines, self.source, self.i = lines, source, 0

    def fail(self, line: _Line, why: str) -> NoReturn:
        raise YamlSubsetError(f"{self.source}, line {line.number}: {why}")

    def node(self, i: int, indent: int) -> Any:
        self.i = i
        if _is_item(self.lines[i].text):
            return self.sequence(indent)
        return self.mapping(indent)

    def _child(self, line: _Line, indent: int, *, seq_ok: bool) -> Any:
        """The block under ``line`` (indented deeper, or a sequence at ``indent``)."""
        nxt = self.i + 1
        if nxt < len(self.lines):
            below = self.lines[nxt]
            if below.indent > indent or (
                seq_ok and below.indent == indent and _is_item(below.text)
            ):
                return self.node(nxt, below.indent)
        self.i = nxt
        return None

    def sequence(self, indent: int) -> list[Any]:
        items: list[Any] = []
        while self.i < len(self.lines):
            line = self.lines[self.i]
            if line.indent != indent or not _is_item(line.text):
                break
            rest = line.text[1:].lstrip(" ")
            if not rest:
                items.append(self._child(line, indent, seq_ok=False))
            else:
                column = indent + len(line.text) - len(rest)
                self.lines[self.i] = _Line(line.number, column, rest)
                if _split_key(rest) is not None or _is_item(rest):
                    items.append(self.node(self.i, column))
                else:
                    items.append(self.scalar(rest, line))
                    self.i += 1
        self._no_deeper(indent)
        return items

    def mapping(self, indent: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        while self.i < len(self.lines):
            line = self.lines[self.i]
            if line.indent != indent:
                break
            if _is_item(line.text):
                self.fail(line, "a list item where a `key: value` line was expected")
            split = _split_key(line.text)
            if split is None:
                self.fail(line, f"expected `key: value`, got {line.text!r}")
            key, rest = split
            if key in out:
                self.fail(line, f"the key {key!r} appears twice in the same mapping; keep one")
            if rest:
                out[key] = self.scalar(rest, line)
                self.i += 1
            else:
                out[key] = self._child(line, indent, seq_ok=True)
        self._no_deeper(indent)
        return out

    def _no_deeper(self, indent: int) -> None:
        if self.i < len(self.lines) and self.lines[self.i].indent > indent:
            self.fail(self.lines[self.i], "unexpected indentation")

    def scalar(self, text: str, line: _Line) -> Any:
        if text[0] in "&*!|>%@`":
            what = {"&": "anchors", "*": "aliases", "!": "tags", "|": "block scalars"}
            self.fail(
                line,
                f"{what.get(text[0], 'this syntax')} are not supported in program files; "
                "write the value out on one line",
            )
        if text[0] in "[{":
            flow = _Flow(text, lambda why: self.fail(line, why))
            value = flow.value()
            flow.end()
            return value
        if text[0] in "\"'":
            value, end = _quoted(text, 0, lambda why: self.fail(line, why))
            if text[end:].strip():
                self.fail(line, f"unexpected text after the quoted string: {text[end:]!r}")
            return value
        return _plain(text)


def _split_key(text: str) -> tuple[str, str] | None:
    """``(key, rest)`` of a ``key: rest`` line, or None when the line is not one."""
    if text[0] in "\"'":
        try:
            key, end = _quoted(text, 0, _raise)
        except ValueError:
            return None
        if text[end : end + 1] != ":" or text[end + 1 : end + 2] not in ("", " "):
            return None
        return key, text[end + 1 :].strip()
    if text[0] in "[{":
        return None
    match = re.match(r"([^:#]*?[^\s:])\s*:(?:\s+|$)", text)
    if match is None:
        return None
    return match.group(1), text[match.end() :].strip()


def _raise(why: str) -> NoReturn:
    raise ValueError(why)


def _quoted(text: str, start: int, fail: Callable[[str], NoReturn]) -> tuple[str, int]:
    quote, pos, out = text[start], start + 1, []
    while pos < len(text):
        ch = text[pos]
        if quote == "'" and ch == "'":
            if text[pos + 1 : pos + 2] == "'":
                out.append("'")
                pos += 2
                continue
            return "".join(out), pos + 1
        if quote == '"' and ch == '"':
            return "".join(out), pos + 1
        if quote == '"' and ch == "\\":
            esc = text[pos + 1 : pos + 2]
            if esc not in _ESCAPES:
                fail(f"unknown escape \\{esc} in a double-quoted string")
            out.append(_ESCAPES[esc])
            pos += 2
            continue
        out.append(ch)
        pos += 1
    fail(f"the string opened with {quote} is not closed on this line")


def _plain(text: str) -> Any:
    if text in ("null", "Null", "NULL", "~"):
        return None
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return text


class _Flow:
    """One-line flow collections: ``[a, 'b', {c: 1}]``."""

    def __init__(self, text: str, fail: Callable[[str], NoReturn]) -> None:
        self.text, self.pos, self.fail = text, 0, fail

    def _skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] == " ":
            self.pos += 1

    def end(self) -> None:
        self._skip()
        if self.pos != len(self.text):
            self.fail(f"unexpected text after the closing bracket: {self.text[self.pos :]!r}")

    def value(self) -> Any:
        self._skip()
        ch = self.text[self.pos : self.pos + 1]
        if ch == "[":
            return self._items("]", self._one)
        if ch == "{":
            pairs = self._items("}", self._pair)
            out: dict[str, Any] = {}
            for key, value in pairs:
                if key in out:
                    self.fail(f"the key {key!r} appears twice in the same mapping; keep one")
                out[key] = value
            return out
        if ch in ('"', "'"):
            value, self.pos = _quoted(self.text, self.pos, self.fail)
            return value
        end = self.pos
        while end < len(self.text) and self.text[end] not in ",]}:":
            end += 1
        word, self.pos = self.text[self.pos : end].strip(), end
        if not word:
            self.fail(f"a value is missing at column {self.pos + 1}")
        return _plain(word)

    def _one(self) -> Any:
        return self.value()

    def _pair(self) -> tuple[str, Any]:
        key = self.value()
        self._skip()
        if self.text[self.pos : self.pos + 1] != ":":
            self.fail(f"expected `:` after the key {key!r} in a flow mapping")
        self.pos += 1
        return str(key), self.value()

    def _items(self, close: str, read: Callable[[], Any]) -> list[Any]:
        self.pos += 1
        items: list[Any] = []
        self._skip()
        if self.text[self.pos : self.pos + 1] == close:
            self.pos += 1
            return items
        while True:
            items.append(read())
            self._skip()
            ch = self.text[self.pos : self.pos + 1]
            if ch == ",":
                self.pos += 1
                self._skip()
                if self.text[self.pos : self.pos + 1] == close:  # trailing comma
                    self.pos += 1
                    return items
                continue
            if ch == close:
                self.pos += 1
                return items
            self.fail(f"expected `,` or `{close}` at column {self.pos + 1}, the line ends first")
