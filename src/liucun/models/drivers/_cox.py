"""Cox proportional-hazards driver analysis: hazard ratios with intervals and sentences.

It runs on any table with one row per unit, a duration and an event flag (see
docs/drivers-and-funnels.md): the event is churn by default, and the sentences name
whatever event the table records ("the hazard of a second order") when it is not.

The model is statsmodels' ``PHReg`` (lifelines pins pandas < 3). Covariates are in
natural units, each reported per a stated increment (10 percentage points of a share,
one point of NPS, a doubling of the first order's value) so that a retention team reads
"10 percentage points more late deliveries raise the churn hazard by 38 % [25 %, 52 %]".

Problems in the data do not stop the analysis; each becomes a sentence in
:attr:`DriverAnalysis.notes`: a constant covariate, a categorical level too small to
estimate (pooled into "other"), a covariate that is a linear combination of others
(dropped), two nearly collinear covariates, rows with missing values (dropped), a
hazard ratio that runs off to 0 or ∞ (separation), a warning from the optimiser.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

import ibis.expr.types as ir
import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.duration.hazard_regression import PHReg

from liucun.core import InvalidInput
from liucun.models.drivers._dataset import DEFAULT_GAP_DAYS, survival_dataset

Kind = Literal["numeric", "flag", "categorical"]
Ties = Literal["efron", "breslow"]

OTHER_LEVEL = "other"
MISSING_LEVEL = "missing"
#: Correlation above which two covariates are reported as nearly collinear.
HIGH_CORRELATION = 0.95
#: |log hazard ratio| per unit above which an estimate is reported as not identified.
_SEPARATION_LOG_HR = 10.0


@dataclass(frozen=True)
class Covariate:
    """One candidate driver and how to read it.

    Parameters
    ----------
    column
        Column of the survival dataset.
    phrase
        What an increase of ``per`` is, as the subject of a sentence ("10 percentage
        points more late deliveries"); for a flag, the condition ("a coupon on the first
        order"); for a categorical, the name of the attribute ("main channel").
    kind
        ``"numeric"``, ``"flag"`` (true/false) or ``"categorical"`` (one term per level
        against the most common level).
    per
        The increment the hazard ratio refers to (numeric only).
    fill
        Value for missing entries: a number, ``"mean"`` (of the others), or ``None`` to
        drop those rows (reported in the notes).
    label
        A short name for tables and charts ("first order value (2× median)"); default:
        the column name in words. A categorical level reads "region: north", a flag
        "coupon (with vs without)".
    """

    column: str
    phrase: str = ""
    kind: Kind = "numeric"
    per: float = 1.0
    fill: float | Literal["mean"] | None = None
    label: str = ""


#: The drivers :func:`cox_drivers` uses by default (columns of ``survival_dataset``).
#: Shares of orders rather than counts: a count grows with the time a customer has
#: stayed, which would make every count look protective (immortal-time bias).
DEFAULT_COVARIATES: tuple[Covariate, ...] = (
    Covariate(
        "late_delivery_share",
        "a late-delivery share 10 percentage points higher",
        per=0.1,
        label="late-delivery share (+10 pp)",
    ),
    Covariate(
        "ticket_share",
        "a support-ticket share (orders with a ticket) 10 percentage points higher",
        per=0.1,
        label="support-ticket share (+10 pp)",
    ),
    Covariate(
        "slow_ticket_share",
        "a slow-ticket share (orders with a ticket resolved after 48 h) 10 percentage "
        "points higher",
        per=0.1,
        label="slow-ticket share (+10 pp)",
    ),
    Covariate(
        "detractor_share",
        "an NPS-detractor share (orders rated 0–6) 10 percentage points higher",
        per=0.1,
        label="NPS-detractor share (+10 pp)",
    ),
    Covariate(
        "promoter_share",
        "an NPS-promoter share (orders rated 9–10) 10 percentage points higher",
        per=0.1,
        label="NPS-promoter share (+10 pp)",
    ),
    Covariate(
        "coupon_share",
        "a coupon share 10 percentage points higher",
        per=0.1,
        label="coupon share (+10 pp)",
    ),
    Covariate(
        "message_open_rate",
        "a message open rate 10 percentage points higher",
        per=0.1,
        fill="mean",
        label="message open rate (+10 pp)",
    ),
    Covariate(
        "first_order_value_log2_rel",
        "a first order twice as large (relative to the median in its currency)",
        fill=0.0,
        label="first order value (2× median)",
    ),
    Covariate("main_channel", "main channel", kind="categorical"),
    Covariate("acquisition_channel", "acquisition channel", kind="categorical"),
    Covariate("region", "region", kind="categorical"),
    Covariate("customer_type", "customer type", kind="categorical"),
)


@dataclass(frozen=True)
class DriverAnalysis:
    """The fitted driver model.

    ``hazard_ratios`` has one row per model term: ``term, covariate, level`` (for a
    categorical; its ``reference`` level), ``label`` (a short readable name: "first
    order value (2× median)", "region: north"), ``per``, ``hazard_ratio, ci_low,
    ci_high, p_value, coef, se`` (log hazard ratio per unit of the column and its
    standard error), ``significant`` (the interval excludes 1) and ``sentence``;
    significant terms first, then by the size of the effect (|log hazard ratio| per
    ``per``). ``churned`` counts the rows with the event (churn unless ``event_name``
    says otherwise).
    """

    hazard_ratios: pd.DataFrame
    notes: tuple[str, ...]
    customers: int
    churned: int
    ties: str
    strata: str | None
    log_likelihood: float
    confidence: float
    event_name: str = "churn"


def _pct(value: float) -> str:
    """A percentage change as "38 %" (one decimal below 10 %)."""
    digits = 0 if abs(value) >= 9.95 else 1
    return f"{value:.{digits}f} %"


def hazard_of(event_name: str) -> str:
    """The hazard as a sentence names it: "the churn hazard" for churn, else "the hazard
    of a second order" (``event_name`` as given)."""
    return "the churn hazard" if event_name == "churn" else f"the hazard of {event_name}"


def sentence(
    phrase: str,
    hr: float,
    low: float,
    high: float,
    p: float,
    *,
    event_name: str = "churn",
    flag: bool = False,
) -> str:
    """One sentence per hazard ratio, e.g. "… raises the churn hazard by 38 % [25 %, 52 %]".

    ``event_name`` names the event whose hazard it is (:func:`hazard_of`). A ``flag``
    (a binary covariate, ``phrase`` its condition) compares the two groups: "Customers
    with a coupon vs without have a 20 % lower churn hazard [5.0 %, 30 %]".
    """
    hazard = hazard_of(event_name)
    rise = f"[{_pct(100 * (low - 1))}, {_pct(100 * (high - 1))}]"
    fall = f"[{_pct(100 * (1 - high))}, {_pct(100 * (1 - low))}]"
    unclear = f"({_pct(100 * (hr - 1))} {rise}, p = {p:.2g})"
    if flag:
        who = f"Customers with {phrase} vs without"
        noun = hazard.removeprefix("the ")
        if low > 1:
            return f"{who} have a {_pct(100 * (hr - 1))} higher {noun} {rise}"
        if high < 1:
            return f"{who} have a {_pct(100 * (1 - hr))} lower {noun} {fall}"
        return f"{who} show no clear difference in {hazard} {unclear}"
    if low > 1:
        return f"{phrase} raises {hazard} by {_pct(100 * (hr - 1))} {rise}"
    if high < 1:
        return f"{phrase} lowers {hazard} by {_pct(100 * (1 - hr))} {fall}"
    return f"{phrase} has no clear effect on {hazard} {unclear}"


def _resolve(data: pd.DataFrame, spec: Covariate | str) -> Covariate:
    """A covariate spec for a column name, its kind inferred from the dtype."""
    cov = spec if isinstance(spec, Covariate) else Covariate(str(spec))
    if cov.column not in data.columns:
        raise InvalidInput(
            f"covariate {cov.column!r} is not a column of the data; columns are "
            f"{', '.join(map(str, data.columns))}"
        )
    if not isinstance(spec, Covariate):
        col = data[cov.column]
        if pd.api.types.is_bool_dtype(col):
            cov = replace(cov, kind="flag")
        elif not pd.api.types.is_numeric_dtype(col):
            cov = replace(cov, kind="categorical")
    name = cov.column.replace("_", " ")
    condition = re.sub(r"^(has|is|with|had)_", "", cov.column).replace("_", " ")
    if not cov.phrase:
        default = {
            "numeric": f"{name} {'one unit' if cov.per == 1 else f'{cov.per:g} units'} higher",
            "flag": condition,
            "categorical": name,
        }
        cov = replace(cov, phrase=default[cov.kind])
    if not cov.label:
        per = "" if cov.kind != "numeric" or cov.per == 1 else f" (+{cov.per:g})"
        cov = replace(cov, label=(condition if cov.kind == "flag" else name) + per)
    if not (np.isfinite(cov.per) and cov.per > 0):
        raise InvalidInput(f"per must be a positive number, got {cov.per!r} for {cov.column!r}")
    return cov


@dataclass
class _Term:
    name: str
    covariate: Covariate
    level: str | None
    reference: str | None
    values: np.ndarray


def _terms(
    data: pd.DataFrame, covs: Sequence[Covariate], min_level: int, notes: list[str]
) -> tuple[list[_Term], np.ndarray]:
    """Design columns of every covariate, and the rows to keep (no missing values)."""
    keep = np.ones(len(data), dtype=bool)
    terms: list[_Term] = []
    for cov in covs:
        col = data[cov.column]
        if cov.kind == "categorical":
            levels = col.astype("string").fillna(MISSING_LEVEL)
            counts = levels.value_counts()
            rare = [str(v) for v in counts.index[counts < min_level]]
            if rare and len(rare) < len(counts):
                notes.append(
                    f"{cov.phrase}: level(s) {', '.join(rare)} have fewer than {min_level} "
                    f"customers each and are pooled as '{OTHER_LEVEL}'"
                )
                levels = levels.where(~levels.isin(rare), OTHER_LEVEL)
                counts = levels.value_counts()
            if len(counts) < 2:
                only = counts.index[0] if len(counts) else "nothing"
                notes.append(
                    f"{cov.phrase} was left out: every customer has the same value ({only})"
                )
                continue
            reference = str(counts.index[0])  # the most common level
            for level in sorted(str(v) for v in counts.index if str(v) != reference):
                terms.append(
                    _Term(
                        f"{cov.column}[{level}]",
                        cov,
                        level,
                        reference,
                        (levels == level).to_numpy(dtype=np.float64),
                    )
                )
            continue
        values = pd.to_numeric(col.astype("float64"), errors="coerce").to_numpy(np.float64)
        missing = ~np.isfinite(values)
        if missing.any():
            if cov.fill is None:
                keep &= ~missing
                notes.append(
                    f"{cov.column}: {int(missing.sum())} customer(s) without a value were "
                    "left out (give the covariate a fill value to keep them)"
                )
            else:
                known = values[~missing]
                if cov.fill == "mean":
                    fill = float(known.mean()) if known.size else 0.0
                else:
                    fill = float(cov.fill)
                values = np.where(missing, fill, values)
        terms.append(_Term(cov.column, cov, None, None, values))
    return terms, keep


def _screen(terms: list[_Term], keep: np.ndarray, notes: list[str]) -> list[_Term]:
    """Drop constant and perfectly collinear terms; note near-collinear pairs."""
    kept: list[_Term] = []
    basis = np.empty((int(keep.sum()), 0))
    for term in terms:
        x = term.values[keep]
        if x.size == 0 or np.ptp(x) == 0:
            what = term.name if term.level is None else f"{term.covariate.column}={term.level}"
            notes.append(f"{what} was left out: it has the same value for every customer")
            continue
        centred = x - x.mean()
        if basis.shape[1]:
            coef, *_ = np.linalg.lstsq(basis, centred, rcond=None)
            residual = centred - basis @ coef
            if np.linalg.norm(residual) <= 1e-8 * np.linalg.norm(centred):
                partners = [kept[i].name for i in np.flatnonzero(np.abs(coef) > 1e-8)]
                notes.append(
                    f"{term.name} was left out: it is a linear combination of "
                    f"{', '.join(partners)} (perfectly collinear), so its effect cannot be "
                    "told apart from theirs"
                )
                continue
            for other, b in zip(kept, basis.T, strict=True):
                r = float(np.corrcoef(b, centred)[0, 1])
                if abs(r) > HIGH_CORRELATION:
                    notes.append(
                        f"{term.name} and {other.name} are highly correlated (r = {r:.2f}); "
                        "their separate hazard ratios are unstable"
                    )
        kept.append(term)
        basis = np.column_stack([basis, centred])
    return kept


def cox_drivers(
    data: pd.DataFrame,
    covariates: Sequence[Covariate | str] | None = None,
    *,
    duration: str = "duration_days",
    event: str = "churned",
    strata: str | None = None,
    ties: Ties = "efron",
    standardize: bool = False,
    confidence: float = 0.95,
    min_level_customers: int = 20,
    event_name: str | None = None,
) -> DriverAnalysis:
    """Fit a Cox model of time to an event (churn by default) and report hazard ratios
    with intervals.

    Parameters
    ----------
    data
        One row per customer, e.g. ``survival_dataset(...).to_pandas()``.
    covariates
        :class:`Covariate` specs or column names (kind from the dtype: bool → flag,
        text → categorical, numbers → numeric per 1 unit); default
        :data:`DEFAULT_COVARIATES`.
    duration, event
        Columns with the time at risk (e.g. from the first order) and whether the event
        was observed (true) or the row is censored (false or missing).
    strata
        A column to stratify on (each value gets its own baseline hazard; e.g.
        ``"customer_type"``); it is then not a covariate.
    ties
        Handling of tied churn times: ``"efron"`` (default, accurate with many ties) or
        ``"breslow"``.
    standardize
        Report numeric covariates per standard deviation instead of per their ``per``.
    confidence
        Level of the intervals.
    min_level_customers
        Categorical levels with fewer customers are pooled into "other".
    event_name
        What the event is, as the sentences name its hazard: ``"churn"`` gives "the
        churn hazard", ``"a second order"`` gives "the hazard of a second order".
        Default: ``"churn"`` when ``event`` is ``"churned"``, else "the event
        (<column>)".

    Raises
    ------
    InvalidInput
        A column is missing, durations are negative, there is no event to explain, or
        no covariate is left to fit.
    """
    _check_options(data, (duration, event, *([strata] if strata else [])), confidence, ties)
    if event_name is None:
        event_name = "churn" if event == "churned" else f"the event ({event})"
    notes: list[str] = []
    specs = _covariate_specs(data, covariates, strata, notes)
    time, status = _survival_times(data, duration, event)
    terms, keep = _terms(data, specs, int(min_level_customers), notes)
    terms = _screen(terms, keep, notes)
    if not terms:
        raise InvalidInput(
            "no covariate is left to fit (each was constant or collinear): " + "; ".join(notes)
        )
    n_events = int(status[keep].sum())
    if n_events == 0:
        raise InvalidInput(
            "no customer churned in the data, so nothing explains churn; use a longer "
            "period or a shorter gap"
            if event_name == "churn"
            else f"no row has {event_name} ({event} is never true), so there is nothing to "
            f"explain; check the {event!r} column"
        )
    x, scale = _design(terms, keep, standardize)
    groups = None
    if strata is not None:
        groups = data[strata].astype("string").fillna(MISSING_LEVEL).to_numpy()[keep]
    fit = _fit_phreg(time[keep], x, status[keep], groups, ties, notes)
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    rows = [
        _hazard_row(term, fit, j, (scale[j], z), standardize, event_name, notes)
        for j, term in enumerate(terms)
    ]
    return DriverAnalysis(
        hazard_ratios=_ranked(pd.DataFrame(rows)),
        notes=tuple(notes),
        customers=int(keep.sum()),
        churned=n_events,
        ties=ties,
        strata=strata,
        log_likelihood=fit.llf,
        confidence=confidence,
        event_name=event_name,
    )


def _check_options(
    data: pd.DataFrame, columns: Sequence[str], confidence: float, ties: str
) -> None:
    """Refuse a confidence outside (0, 1), unknown ties, or a missing column."""
    if not (0 < confidence < 1):
        raise InvalidInput(f"confidence must lie in (0, 1), got {confidence!r}")
    if ties not in ("efron", "breslow"):
        raise InvalidInput(f"ties must be 'efron' or 'breslow', got {ties!r}")
    for name in columns:
        if name not in data.columns:
            raise InvalidInput(f"column {name!r} is not in the data; pass the survival dataset")


def _survival_times(data: pd.DataFrame, duration: str, event: str) -> tuple[np.ndarray, np.ndarray]:
    """Durations (finite, non-negative) and churn indicators (1.0/0.0; missing = 0)."""
    time = pd.to_numeric(data[duration], errors="coerce").to_numpy(np.float64)
    status = data[event].astype("boolean").fillna(False).to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(time)) or np.any(time < 0):
        raise InvalidInput(f"{duration} must be finite and non-negative for every customer")
    return time, status


def _design(
    terms: list[_Term], keep: np.ndarray, standardize: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The design matrix of the kept rows, and the increment each term is reported per
    (a numeric covariate's ``per``, or its standard deviation; 1 for flags and levels)."""
    x = np.column_stack([t.values[keep] for t in terms])
    scale = np.ones(len(terms))
    for j, term in enumerate(terms):
        if term.level is None and term.covariate.kind == "numeric":
            scale[j] = float(np.std(x[:, j])) if standardize else term.covariate.per
    return x, scale


def _ranked(table: pd.DataFrame) -> pd.DataFrame:
    """Significant terms first, then by the size of the effect (|log HR|, undefined last)."""
    effect = np.abs(np.log(table["hazard_ratio"].to_numpy()))
    order = np.lexsort((-np.nan_to_num(effect, nan=-1.0), ~table["significant"].to_numpy()))
    return table.iloc[order].reset_index(drop=True)


def _covariate_specs(
    data: pd.DataFrame,
    covariates: Sequence[Covariate | str] | None,
    strata: str | None,
    notes: list[str],
) -> list[Covariate]:
    """The covariates to fit: resolved specs, without the stratum."""
    specs = [_resolve(data, c) for c in (DEFAULT_COVARIATES if covariates is None else covariates)]
    if strata is not None and any(c.column == strata for c in specs):
        specs = [c for c in specs if c.column != strata]
        notes.append(f"{strata} is the stratum, so it is not also a covariate")
    if not specs:
        raise InvalidInput("no covariate to fit; pass at least one column")
    return specs


@dataclass(frozen=True)
class _Fit:
    coef: np.ndarray
    se: np.ndarray
    pvalues: np.ndarray
    llf: float


def _fit_phreg(
    time: np.ndarray,
    x: np.ndarray,
    status: np.ndarray,
    groups: np.ndarray | None,
    ties: Ties,
    notes: list[str],
) -> _Fit:
    """statsmodels' PHReg fit; its warnings become notes."""
    model = PHReg(time, x, status=status, strata=groups, ties=ties)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = model.fit()
        out = _Fit(
            coef=np.asarray(fit.params, dtype=np.float64),
            se=np.asarray(fit.bse, dtype=np.float64),
            pvalues=np.asarray(fit.pvalues, dtype=np.float64),
            llf=float(fit.llf),
        )
    for message in dict.fromkeys(str(w.message) for w in caught):
        notes.append(f"statsmodels warned while fitting: {message}")
    return out


def _label(term: _Term, scale: float, standardize: bool) -> str:
    """The term's short name: "first order value (2× median)", "region: north",
    "coupon (with vs without)", "x1 (+1 SD)"."""
    cov = term.covariate
    if term.level is not None:
        return f"{cov.label}: {term.level}"
    if cov.kind == "flag":
        return f"{cov.label} (with vs without)"
    if standardize:
        return f"{cov.column.replace('_', ' ')} (+1 SD = {scale:.3g})"
    return cov.label


def _hazard_row(
    term: _Term,
    fit: _Fit,
    j: int,
    scale_z: tuple[float, float],
    standardize: bool,
    event_name: str,
    notes: list[str],
) -> dict[str, object]:
    """One row of the hazard-ratio table: the ratio per the term's increment (``scale``;
    ``z`` the interval's normal quantile), its interval, label and sentence (or a note
    when separation leaves it unidentified)."""
    scale, z = scale_z
    b, sd = fit.coef[j] * scale, fit.se[j] * scale
    hr, low, high = np.exp(b), np.exp(b - z * sd), np.exp(b + z * sd)
    p_value = fit.pvalues[j]
    if term.level is not None:
        phrase = f"{term.covariate.phrase} {term.level} (vs {term.reference})"
    elif term.covariate.kind == "numeric" and standardize:
        phrase = f"{term.name.replace('_', ' ')} one standard deviation ({scale:.3g}) higher"
    else:
        phrase = term.covariate.phrase
    flag = term.level is None and term.covariate.kind == "flag"
    if not flag:
        phrase = phrase[:1].upper() + phrase[1:]
    identified = abs(b) <= _SEPARATION_LOG_HR and bool(np.isfinite(sd))
    if identified:
        text = sentence(phrase, hr, low, high, p_value, event_name=event_name, flag=flag)
    else:
        first = "churns first" if event_name == "churn" else "has the event first"
        notes.append(
            f"{term.name}: the hazard ratio runs off towards {'∞' if b > 0 else '0'} "
            f"because the covariate perfectly orders who {first} (separation); "
            "it is not identified"
        )
        if flag:
            phrase = f"Customers with {phrase} vs without"
        hr = low = high = p_value = np.nan
        text = f"{phrase}: the effect cannot be estimated (separation; see the notes)"
    return {
        "term": term.name,
        "covariate": term.covariate.column,
        "level": term.level,
        "reference": term.reference,
        "label": _label(term, scale, standardize),
        "per": scale if term.level is None and term.covariate.kind == "numeric" else 1.0,
        "hazard_ratio": hr,
        "ci_low": low,
        "ci_high": high,
        "p_value": p_value,
        "coef": fit.coef[j],
        "se": fit.se[j],
        "significant": bool(low > 1 or high < 1),
        "sentence": text,
    }


def churn_drivers(
    events: ir.Table,
    users: ir.Table | None = None,
    covariates: Sequence[Covariate | str] | None = None,
    *,
    gap_days: int = DEFAULT_GAP_DAYS,
    end: datetime | None = None,
    strata: str | None = None,
    ties: Ties = "efron",
    confidence: float = 0.95,
) -> DriverAnalysis:
    """:func:`survival_dataset` from the warehouse, then :func:`cox_drivers` on it.

    Examples
    --------
    >>> from liucun.warehouse import resolved_events
    >>> wh = workspace.warehouse  # doctest: +SKIP
    >>> events = resolved_events(wh.table("events"), wh.table("identities"))  # doctest: +SKIP
    >>> churn_drivers(events, wh.table("users")).hazard_ratios.sentence  # doctest: +SKIP
    """
    data = survival_dataset(events, users, gap_days=gap_days, end=end).to_pandas()
    if data.empty:
        raise InvalidInput(
            f"no customer's first order is at least {gap_days} days before the end of the "
            "data, so no churn can be observed; use more history or a shorter gap_days"
        )
    return cox_drivers(data, covariates, strata=strata, ties=ties, confidence=confidence)
