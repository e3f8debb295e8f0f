"""FX rates: ``liucun ingest fx FILE`` loads the rates money metrics convert with.

Two layouts are accepted, recognised by the header:

- **long**: ``date,currency,rate`` where ``rate`` is how many units of the reporting
  currency one unit of ``currency`` buys on ``date``;
- **the ECB reference-rate CSV as published** (``eurofxref-hist.csv`` or the daily
  ``eurofxref.csv``): ``Date,USD,JPY,…`` with rates per 1 EUR and ``N/A`` where the ECB
  published none. Each cell becomes the rate of that currency into EUR (``1 / cell``);
  when the reporting currency is not EUR, it is crossed through the reporting
  currency's column (``cell[reporting] / cell[currency]``), and EUR itself gets
  ``cell[reporting]``.

Every rate is stored with the currency it is expressed in (``quote``), keyed by
``(date, currency, quote)``: loading a file again replaces its rates with themselves.
A file with any bad row is refused whole, with the line numbers of the first problems.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import pyarrow as pa

from liucun.core import ConfigError, InvalidInput
from liucun.ingest._currencies import ISO_4217
from liucun.schema import arrow_schema
from liucun.warehouse import Warehouse

#: How many problems a refused file lists.
MAX_PROBLEMS = 5
_ECB_DATE_FORMATS = ("%Y-%m-%d", "%d %B %Y")


@dataclass(frozen=True)
class FxLoadResult:
    """What ``load_fx_rates`` stored: ``rates`` rows into ``quote``, from ``first`` to
    ``last``; ``layout`` is ``"long"`` or ``"ecb"``; ``skipped`` counts ECB cells without
    a rate (``N/A``, empty, or a currency no longer in ISO 4217, listed in ``retired``)."""

    rates: int
    currencies: tuple[str, ...]
    quote: str
    first: date | None
    last: date | None
    layout: str
    skipped: int = 0
    retired: tuple[str, ...] = ()


def read_fx_rates(path: Path, *, quote: str | None) -> tuple[pa.Table, FxLoadResult]:
    """Parse and validate an FX file into ``fx_rates`` rows (nothing is written).

    ``quote`` is the reporting currency; it is required (a rate means nothing without
    the currency it is expressed in).
    """
    if quote is None:
        raise ConfigError(
            "FX rates convert into the reporting currency, and none is set; set [reporting] "
            'currency = "CNY" (your currency) in liucun.toml, then load the rates again'
        )
    quote = quote.upper()
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InvalidInput(f"no FX file {path}; give the path of a CSV file") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{path} is not a UTF-8 text CSV file") from None
    rows = list(csv.reader(io.StringIO(text)))
    while rows and not any(c.strip() for c in rows[-1]):
        rows.pop()
    if not rows:
        raise InvalidInput(f"{path} is empty; it needs a header date,currency,rate and rows")
    header = [c.strip() for c in rows[0]]
    lowered = [c.lower() for c in header]
    if lowered[:3] == ["date", "currency", "rate"] and len([c for c in header if c]) == 3:
        table, result = _long(rows[1:], quote, path)
    elif lowered[:1] == ["date"] and _is_wide(header[1:]):
        table, result = _ecb(header, rows[1:], quote, path)
    else:
        raise InvalidInput(
            f"{path}: the header {','.join(header)!r} is neither date,currency,rate nor the "
            "ECB reference-rate layout (Date,USD,JPY,…); rename the columns to date,currency,rate"
        )
    return table, result


def load_fx_rates(warehouse: Warehouse, path: Path, *, quote: str | None) -> FxLoadResult:
    """Validate ``path`` and store its rates (replacing the same days' rates)."""
    table, result = read_fx_rates(path, quote=quote)
    if table.num_rows:
        with warehouse.transaction() as tx:
            staged = warehouse.read_arrow(table, name="_fx_staged")
            try:
                tx.upsert("fx_rates", staged.drop("_line"), ["date", "currency", "quote"])
            finally:
                warehouse.forget("_fx_staged")
    return result


def _is_wide(codes: list[str]) -> bool:
    named = [c for c in codes if c]
    return bool(named) and all(len(c) == 3 and c.isascii() and c.isalpha() for c in named)


def _parse_date(text: str, formats: tuple[str, ...] = ("%Y-%m-%d",)) -> date | None:
    for fmt in formats:
        try:
            return datetime.strptime(text.strip(), fmt).date()
        except ValueError:
            continue
    return None


def _parse_rate(text: str) -> float | None:
    """A finite, positive rate, else None."""
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def _refuse(path: Path, problems: list[str], total: int) -> InvalidInput:
    more = f" (and {total - len(problems)} more)" if total > len(problems) else ""
    return InvalidInput(
        f"{path}: nothing loaded, {total} bad row(s){more}: "
        + "; ".join(problems)
        + ". Fix these rows and load the file again"
    )


def _long(rows: list[list[str]], quote: str, path: Path) -> tuple[pa.Table, FxLoadResult]:
    seen: dict[tuple[date, str], tuple[float, int]] = {}
    problems: list[str] = []
    bad = 0
    for line, row in enumerate(rows, start=2):
        if not any(c.strip() for c in row):
            continue
        cells = [*row, "", "", ""][:3]
        reasons = []
        day = _parse_date(cells[0])
        if day is None:
            reasons.append(f"date {cells[0].strip()!r} is not a date (use YYYY-MM-DD)")
        code = cells[1].strip().upper()
        if code not in ISO_4217:
            reasons.append(f"currency {cells[1].strip()!r} is not an ISO 4217 code (e.g. USD)")
        rate = _parse_rate(cells[2])
        if rate is None:
            reasons.append(f"rate {cells[2].strip()!r} is not a positive finite number")
        if len([c for c in row if c.strip()]) > 3:
            reasons.append("the row has more than three fields")
        if not reasons and day is not None and rate is not None:
            earlier = seen.get((day, code))
            if earlier is not None and earlier[0] != rate:
                reasons.append(
                    f"{code} on {day} is also given as {earlier[0]} on line {earlier[1]}"
                )
            else:
                seen[(day, code)] = (rate, line)
        if reasons:
            bad += 1
            if len(problems) < MAX_PROBLEMS:
                problems.append(f"line {line}: " + ", ".join(reasons))
    if bad:
        raise _refuse(path, problems, bad)
    keys = sorted(seen)
    return _table(keys, [seen[k][0] for k in keys], quote, path, "long")


def _ecb(
    header: list[str], rows: list[list[str]], quote: str, path: Path
) -> tuple[pa.Table, FxLoadResult]:
    codes = [c.upper() for c in header[1:]]
    retired = sorted({c for c in codes if c and c not in ISO_4217})
    if quote != "EUR" and quote not in codes:
        raise InvalidInput(
            f"{path} is an ECB file without a {quote} column, so its EUR rates cannot be "
            f"crossed into {quote} (the reporting currency); use a date,currency,rate file "
            f"with rates into {quote}"
        )
    rates: dict[tuple[date, str], float] = {}
    problems: list[str] = []
    bad = skipped = 0
    for line, row in enumerate(rows, start=2):
        if not any(c.strip() for c in row):
            continue
        day = _parse_date(row[0], _ECB_DATE_FORMATS)
        reasons = []
        if day is None:
            reasons.append(f"date {row[0].strip()!r} is not a date (use YYYY-MM-DD)")
        per_eur: dict[str, float] = {}
        for code, cell in zip(codes, row[1:], strict=False):
            text = cell.strip()
            if not code or code in retired:
                continue
            if text.upper() in ("", "N/A", "NA"):
                skipped += 1
                continue
            rate = _parse_rate(text)
            if rate is None:
                reasons.append(f"{code} {text!r} is not a positive finite number")
            else:
                per_eur[code] = rate
        if reasons:
            bad += 1
            if len(problems) < MAX_PROBLEMS:
                problems.append(f"line {line}: " + ", ".join(reasons))
            continue
        assert day is not None
        cross = 1.0 if quote == "EUR" else per_eur.get(quote)
        if cross is None:  # no quote for the reporting currency that day: nothing usable
            skipped += len(per_eur)
            continue
        for code, value in per_eur.items():
            if code != quote:
                rates[(day, code)] = cross / value
        if quote != "EUR":
            rates[(day, "EUR")] = cross
    if bad:
        raise _refuse(path, problems, bad)
    keys = sorted(rates)
    table, result = _table(keys, [rates[k] for k in keys], quote, path, "ecb")
    return table, FxLoadResult(**{**result.__dict__, "skipped": skipped, "retired": tuple(retired)})


def _table(
    keys: list[tuple[date, str]], values: list[float], quote: str, path: Path, layout: str
) -> tuple[pa.Table, FxLoadResult]:
    table = pa.table(
        {
            "date": [k[0] for k in keys],
            "currency": [k[1] for k in keys],
            "quote": [quote] * len(keys),
            "rate": values,
            "source": [str(Path(path).resolve())] * len(keys),
        },
        schema=arrow_schema("fx_rates"),
    )
    days = [k[0] for k in keys]
    return table, FxLoadResult(
        rates=len(keys),
        currencies=tuple(sorted({k[1] for k in keys})),
        quote=quote,
        first=min(days) if days else None,
        last=max(days) if days else None,
        layout=layout,
    )
