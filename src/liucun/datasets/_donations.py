"""The discrete-time donations data of Fader, Hardie & Shang (2010).

A frequency/recency histogram: each row says how many donors (``weights``) made
``frequency`` repeat donations over ``periods`` annual opportunities, the last in
opportunity ``recency`` (0 when they never gave again).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from liucun.core import InvalidInput
from liucun.datasets._paths import resolve_file

DONATIONS_FILE = ("donations", "donations.csv")
_COLUMNS = ("frequency", "recency", "periods", "weights")


def load_donations(path: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """Load the donations frequency/recency histogram.

    Parameters
    ----------
    path
        The ``donations.csv`` file; by default ``datasets_dir()/donations/donations.csv``.

    Returns
    -------
    pandas.DataFrame
        Columns ``frequency``, ``recency``, ``periods`` and ``weights`` (int64), in file
        order.

    Raises
    ------
    InvalidInput
        If the file is missing or unreadable, a column is missing, a value is not a whole
        number ≥ 0, or a row breaks ``frequency ≤ recency ≤ periods`` (or has a recency
        without any repeat donation). The message names the file and the line.

    Examples
    --------
    >>> d = load_donations()
    >>> int(d["weights"].sum()), sorted(d["periods"].unique().tolist())
    (11104, [6])
    """
    file = resolve_file(path, *DONATIONS_FILE)
    try:
        cols = pd.read_csv(file, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{file}: not a readable CSV file ({exc})") from None
    missing = [c for c in _COLUMNS if c not in cols.columns]
    if missing:
        raise InvalidInput(
            f"{file}: missing column(s) {', '.join(missing)}; the header must name "
            f"{', '.join(_COLUMNS)}"
        )
    cols = cols[list(_COLUMNS)].fillna("").apply(lambda c: c.str.strip())
    line_no = cols.index.to_numpy() + 2  # line 1 is the header

    for name in _COLUMNS:
        bad = ~cols[name].str.fullmatch(r"\d+").to_numpy(dtype=bool)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InvalidInput(
                f"{file}, line {line_no[i]}, field {name!r}: {cols[name].iloc[i]!r} is not "
                "a whole number ≥ 0"
            )
    out = cols.astype("int64")

    rules = (
        (out["frequency"] > out["recency"], "frequency is greater than recency"),
        (out["recency"] > out["periods"], "recency is greater than periods"),
        (
            (out["frequency"] == 0) & (out["recency"] != 0),
            "recency must be 0 when frequency is 0",
        ),
    )
    for bad_rows, what in rules:
        bad = bad_rows.to_numpy(dtype=bool)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            row = ", ".join(f"{c}={out[c].iloc[i]}" for c in _COLUMNS)
            raise InvalidInput(f"{file}, line {line_no[i]}: {what} ({row})")
    return out.reset_index(drop=True)
