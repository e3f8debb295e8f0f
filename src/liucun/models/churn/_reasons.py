"""Per-customer churn reasons from LightGBM's own SHAP contributions.

``booster.predict(X, pred_contrib=True)`` gives each feature's additive contribution to a
customer's log-odds of churning. Related features form a *topic* (recency with the
customer's usual gap, the message-engagement features, ...); a topic's contribution is the
sum of its features' (SHAP values add up). The ``top_k`` topics that raise the risk most
become sentences that quote the customer's own values, e.g. "no order for 94 days — 3.1×
this customer's usual gap (30 days)". A topic only speaks when its sentence is true for the
customer (no "0 late deliveries"); a feature without a topic gets a generic sentence.

Everything is vectorised over customers (NumPy string ufuncs), in batches, so a million
customers need no per-row Python.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from liucun.core import ConfigError
from liucun.models.churn._model import ChurnModel

StrArray = npt.NDArray[np.str_]
S = np.dtypes.StringDType()


class Values:
    """The features of a batch of customers, by name (numeric → float, else strings)."""

    def __init__(self, frame: pd.DataFrame, horizon_days: int) -> None:
        self._frame = frame
        self.horizon_days = horizon_days
        self._cache: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> npt.NDArray[np.float64]:
        if name not in self._cache:
            col = self._frame[name] if name in self._frame.columns else None
            if col is None:
                self._cache[name] = np.full(len(self._frame), np.nan)
            else:
                self._cache[name] = pd.to_numeric(col).to_numpy(np.float64, na_value=np.nan)
        return self._cache[name]

    def text(self, name: str) -> StrArray:
        if name not in self._frame.columns:
            return np.full(len(self._frame), "unknown", dtype=S)
        col = self._frame[name].astype(object)
        return np.asarray(col.where(col.notna(), "unknown").astype(str), dtype=S)


def _int(a: npt.NDArray[np.float64]) -> StrArray:
    return np.rint(np.nan_to_num(a)).astype(np.int64).astype(S)


def _dec(a: npt.NDArray[np.float64]) -> StrArray:
    """One decimal, e.g. ``3.1``."""
    return np.round(np.nan_to_num(a), 1).astype(S)


def _pct(a: npt.NDArray[np.float64]) -> StrArray:
    return np.strings.add(_int(100.0 * a), "%")


def _plural(n: npt.NDArray[np.float64], one: str, many: str) -> StrArray:
    return np.where(np.rint(n) == 1, one, many).astype(S)


def _join(*parts: StrArray | str) -> StrArray:
    out = np.asarray(parts[0], dtype=S)
    for part in parts[1:]:
        out = np.strings.add(out, np.asarray(part, dtype=S))
    return out


def _count(n: npt.NDArray[np.float64], one: str, many: str) -> StrArray:
    """``"1 order"``, ``"3 orders"``."""
    return _join(_int(n), " ", _plural(n, one, many))


Text = Callable[[Values], StrArray]
Applies = Callable[[Values], npt.NDArray[np.bool_]]


@dataclass(frozen=True)
class Topic:
    """Features explained together, the sentence for them and when it applies."""

    code: str
    features: tuple[str, ...]
    text: Text
    applies: Applies | None = None


def _recency(v: Values) -> StrArray:
    ratio, gap = v["gap_ratio"], v["median_gap_days"]
    base = _join("no order for ", _int(v["recency_days"]), " days")
    more = _join(" — ", _dec(ratio), "× this customer's usual gap (", _int(gap), " days)")
    return np.where(np.isfinite(ratio) & (ratio >= 1.0), np.strings.add(base, more), base)


def _trend(v: Values) -> StrArray:
    recent = v["orders_30d"] + v["orders_31_90d"]
    return _join(
        _count(recent, "order", "orders"),
        " in the last 90 days, down from ",
        _int(v["orders_91_180d"]),
        " in the 90 days before",
    )


def _visits(v: Values) -> StrArray:
    last = v["days_since_last_visit"]
    seen = _join(
        "last visit ",
        _int(last),
        " days ago (",
        _count(v["visits_30d"] + v["visits_31_90d"], "visit", "visits"),
        " in 90 days)",
    )
    return np.where(np.isfinite(last), seen, np.asarray("no visit on record", dtype=S))


def _messages(v: Values) -> StrArray:
    opened = v["last_messages_opened"]
    said = np.where(opened == 0, np.asarray("none", dtype=S), _int(opened))
    last = _join("opened ", said, " of the last ", _int(v["last_messages"]), " messages")
    quiet = np.asarray("received no messages in the last 90 days", dtype=S)
    return np.where(_few_opens(v), last, quiet)


def _few_opens(v: Values) -> npt.NDArray[np.bool_]:
    """At most half of the last messages opened."""
    return (v["last_messages"] > 0) & (2 * v["last_messages_opened"] <= v["last_messages"])


def _late(v: Values) -> StrArray:
    recent, total = v["late_deliveries_90d"], v["late_deliveries"]
    in_90 = _join(_count(recent, "late delivery", "late deliveries"), " in the last 90 days")
    ever = _join(_count(total, "late delivery", "late deliveries"), " so far")
    return np.where(recent > 0, in_90, ever)


def _tickets(v: Values) -> StrArray:
    still = _join(_count(v["open_tickets"], "support ticket", "support tickets"), " still open")
    slow = _join("a support ticket took ", _int(v["max_resolution_hours"]), " hours to resolve")
    return np.where(v["open_tickets"] > 0, still, slow)


def _social(v: Values) -> StrArray:
    total = v["reviews"] + v["shares"] + v["referrals"]
    some = _join(_int(total), " reviews, shares or referrals")
    return np.where(total > 0, some, np.asarray("no reviews, shares or referrals", dtype=S))


def _btyd(v: Values) -> StrArray:
    expected = _join(
        _dec(v["expected_orders"]), " orders expected in ", str(v.horizon_days), " days"
    )
    alive = _join(
        "buying pattern: ", _pct(v["p_alive"]), " chance of still being active, ", expected
    )
    # BG/NBD gives every one-time buyer P(alive) = 1 by construction: quoting "100% chance
    # of still being active" as a reason to leave reads as nonsense, so say what it means
    once = _join("buying pattern: no repeat order yet, ", expected)
    return np.where(v["frequency"] <= 1, once, alive)


def _attribute(label: str, feature: str) -> Topic:
    return Topic(feature, (feature,), lambda v: _join(label, ": ", v.text(feature)))


#: NPS answers at or below this are detractors (the standard 0–6), the only ones given as
#: a reason.
NPS_DETRACTOR = 6

#: Every topic; features of the model that no topic names get a generic sentence.
TOPICS: tuple[Topic, ...] = (
    Topic(
        "recency",
        ("recency_days", "gap_ratio", "median_gap_days", "mean_gap_days", "std_gap_days", "cv_gap"),
        _recency,
        lambda v: v["recency_days"] >= 14,
    ),
    Topic(
        "order_trend",
        ("orders_30d", "orders_31_90d", "orders_91_180d", "order_trend"),
        _trend,
        lambda v: v["orders_30d"] + v["orders_31_90d"] < v["orders_91_180d"],
    ),
    Topic(
        "value",
        ("frequency", "monetary", "avg_order_value"),
        lambda v: _join(
            _count(v["frequency"], "order", "orders"), " so far, ", _int(v["monetary"]), " spent"
        ),
        # a short history is a reason; a long one is not, whatever its contribution
        lambda v: v["frequency"] <= 2,
    ),
    Topic(
        "tenure",
        ("tenure_days", "account_age_days"),
        lambda v: _join("first order ", _int(v["tenure_days"]), " days ago"),
    ),
    Topic(
        "visits",
        ("visits_30d", "visits_31_90d", "visit_trend", "days_since_last_visit", "views_90d"),
        _visits,
        lambda v: ~(v["days_since_last_visit"] < 14),
    ),
    Topic(
        "carts",
        ("cart_days_90d", "abandoned_cart_days_90d", "cart_abandon_rate_90d"),
        lambda v: _join(
            "left a cart without ordering on ",
            _count(v["abandoned_cart_days_90d"], "day", "days"),
            " in the last 90 days",
        ),
        lambda v: v["abandoned_cart_days_90d"] > 0,
    ),
    Topic(
        "refunds",
        ("refunds", "refund_share"),
        lambda v: _join(
            _count(v["refunds"], "refund", "refunds"), " (", _pct(v["refund_share"]), " of spend)"
        ),
        lambda v: v["refunds"] > 0,
    ),
    Topic(
        "coupons",
        ("price_sensitivity",),
        lambda v: _join(_pct(v["price_sensitivity"]), " of orders used a coupon or discount"),
        lambda v: v["price_sensitivity"] > 0,
    ),
    Topic(
        "categories",
        ("n_categories", "top_category_share", "top_category"),
        lambda v: _join(
            "buys in ",
            _count(v["n_categories"], "category", "categories"),
            ", mostly ",
            v.text("top_category"),
        ),
    ),
    Topic(
        "channels",
        ("n_channels", "preferred_channel_share", "preferred_channel"),
        lambda v: _join(
            "orders mostly via ",
            v.text("preferred_channel"),
            " (",
            _pct(v["preferred_channel_share"]),
            ")",
        ),
    ),
    Topic(
        "messages",
        (
            "messages_sent_90d",
            "open_rate_90d",
            "click_rate_90d",
            "last_messages",
            "last_messages_opened",
            "days_since_last_open",
        ),
        _messages,
        lambda v: _few_opens(v) | ((v["messages_sent_90d"] == 0) & (v["last_messages"] > 0)),
    ),
    Topic("social", ("reviews", "shares", "referrals"), _social),
    Topic(
        "late_deliveries",
        ("deliveries", "late_deliveries", "late_deliveries_90d"),
        _late,
        lambda v: v["late_deliveries"] > 0,
    ),
    Topic(
        "tickets",
        ("tickets", "tickets_90d", "open_tickets", "max_resolution_hours"),
        _tickets,
        lambda v: (v["open_tickets"] > 0) | np.isfinite(v["max_resolution_hours"]),
    ),
    Topic(
        "nps",
        ("last_nps",),
        lambda v: _join("last NPS answer was ", _int(v["last_nps"]), " out of 10"),
        # a promoter's score is not a reason to leave, whatever its contribution
        lambda v: v["last_nps"] <= NPS_DETRACTOR,
    ),
    Topic(
        "btyd",
        ("p_alive", "expected_orders"),
        _btyd,
        lambda v: np.isfinite(v["p_alive"]) & np.isfinite(v["expected_orders"]),
    ),
    Topic(
        "account_cadence",
        ("account_cadence_days",),
        lambda v: _join(
            "the company account orders every ", _int(v["account_cadence_days"]), " days"
        ),
        lambda v: np.isfinite(v["account_cadence_days"]),
    ),
    _attribute("customer type", "customer_type"),
    _attribute("company size", "company_size"),
    _attribute("industry", "industry"),
    _attribute("acquired via", "acquisition_channel"),
    _attribute("country", "country"),
)


#: The code of the one sentence a customer gets when no topic raises the risk by more than
#: ``min_contribution`` and the features together do not raise it either: the risk is the
#: shop's base rate (on an order-only export most customers look alike).
BASE_RATE = "base_rate"
#: The code of that sentence when the features together do raise the risk, but each topic
#: only a little (or only where its sentence would not be true).
SMALL_EFFECTS = "small_effects"
#: Topics whose sentence states a plain fact whichever way it moves the risk, so it can be
#: quoted as what lowers a base-rate customer's risk most.
FACTUAL_TOPICS = ("recency", "value", "tenure", "btyd")


def _generic(feature: str) -> Topic:
    def text(v: Values) -> StrArray:
        x = v[feature]
        return _join(feature.replace("_", " "), ": ", np.where(np.isfinite(x), _dec(x), "unknown"))

    return Topic(feature, (feature,), text)


def _topics(model: ChurnModel) -> tuple[list[Topic], npt.NDArray[np.int64]]:
    """The topics that explain ``model``'s features, and each feature's topic index."""
    names = list(model.feature_names_)
    owner = np.full(len(names), -1, dtype=np.int64)
    topics: list[Topic] = []
    for topic in TOPICS:
        cols = [names.index(f) for f in topic.features if f in names and owner[names.index(f)] < 0]
        if cols:
            owner[cols] = len(topics)
            topics.append(topic)
    for j in np.flatnonzero(owner < 0):
        owner[j] = len(topics)
        topics.append(
            _attribute(names[j].replace("_", " "), names[j])
            if names[j] in model.categories_
            else _generic(names[j])
        )
    return topics, owner


def churn_reasons(
    model: ChurnModel,
    features: pd.DataFrame,
    *,
    top_k: int = 3,
    min_contribution: float = 0.05,
    batch_size: int = 200_000,
    num_threads: int | None = None,
) -> pd.DataFrame:
    """The top reasons for each customer's churn risk, as sentences.

    Parameters
    ----------
    model
        A fitted :class:`ChurnModel`.
    features
        Rows from :func:`build_features` (the columns the model was trained on).
    top_k
        At most this many reasons per customer, strongest first.
    min_contribution
        A topic must raise the log-odds of churn by more than this to be a reason.
    batch_size
        Customers per batch (bounds memory: the contributions are batch × features).
    num_threads
        LightGBM threads for the contributions (default: the model's ``num_threads``).

    Returns
    -------
    pandas.DataFrame
        ``user_id`` (when ``features`` has it), ``reasons`` (list of sentences) and
        ``reason_codes`` (the topics, e.g. ``recency``, ``late_deliveries``), both Arrow
        ``list<string>`` columns, in the row order of ``features``.
    """
    model._check_is_fitted()
    if top_k < 1:
        raise ConfigError(f"top_k must be at least 1, got {top_k}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    threads = int(model.num_threads if num_threads is None else num_threads)
    if threads < 0:
        raise ConfigError(f"num_threads must be >= 0 (0 = all cores), got {num_threads}")
    topics, owner = _topics(model)
    texts: list[pa.Array] = []
    codes: list[pa.Array] = []
    counts: list[npt.NDArray[np.int64]] = []
    for start in range(0, len(features), batch_size):
        batch = features.iloc[start : start + batch_size]
        text, code, n = _batch(model, batch, topics, owner, top_k, min_contribution, threads)
        texts.append(text)
        codes.append(code)
        counts.append(n)
    n_all = np.concatenate(counts) if counts else np.zeros(0, dtype=np.int64)
    offsets = pa.array(np.concatenate([[0], np.cumsum(n_all)]).astype(np.int32))
    flat_text = pa.concat_arrays(texts) if texts else pa.array([], pa.string())
    flat_code = pa.concat_arrays(codes) if codes else pa.array([], pa.string())
    columns = {
        "reasons": pa.ListArray.from_arrays(offsets, flat_text),
        "reason_codes": pa.ListArray.from_arrays(offsets, flat_code),
    }
    if "user_id" in features.columns:
        columns = {"user_id": pa.array(features["user_id"].astype(str).to_numpy()), **columns}
    out = pa.table(columns).to_pandas(types_mapper=pd.ArrowDtype)
    out.index = features.index
    return out


def _batch(
    model: ChurnModel,
    batch: pd.DataFrame,
    topics: list[Topic],
    owner: npt.NDArray[np.int64],
    top_k: int,
    min_contribution: float,
    threads: int,
) -> tuple[pa.Array, pa.Array, npt.NDArray[np.int64]]:
    """Sentences and topic codes of one batch, flattened row-major, and counts per row."""
    n, g = len(batch), len(topics)
    contrib = model.booster_.predict(
        model._matrix(batch),
        num_iteration=model.best_iteration_,
        pred_contrib=True,
        num_threads=threads,
    )
    contrib = np.asarray(contrib, dtype=np.float64)  # the last column is the bias
    bias = float(contrib[0, -1]) if n else 0.0  # the same for every row: the average score
    contrib = contrib[:, :-1]
    member = np.zeros((owner.size, g))
    member[np.arange(owner.size), owner] = 1.0
    signed = contrib @ member  # SHAP values add up within a topic
    per_topic = signed.copy()
    values = Values(batch, int(model.horizon_days))
    for t, topic in enumerate(topics):
        if topic.applies is not None:
            per_topic[~np.asarray(topic.applies(values), dtype=bool), t] = -np.inf
    per_topic[per_topic <= min_contribution] = -np.inf
    k = min(top_k, g)
    top = np.argsort(-per_topic, axis=1, kind="stable")[:, :k]
    chosen = np.isfinite(np.take_along_axis(per_topic, top, axis=1))
    sentences = np.full((n, k), "", dtype=S)
    for t in np.unique(top[chosen]):
        rows, ranks = np.nonzero((top == t) & chosen)
        sub = Values(batch.iloc[rows], int(model.horizon_days))
        sentences[rows, ranks] = topics[t].text(sub)
    code_names = np.array([topic.code for topic in topics], dtype=object)
    codes = code_names[top]
    silent = np.flatnonzero(~chosen.any(axis=1))
    if silent.size:  # never an empty list: say why no reason can be given
        sub = batch.iloc[silent]
        text, code = _unexplained(model, sub, signed[silent], topics, bias, min_contribution)
        sentences[silent, 0] = text
        codes[silent, 0] = code
        chosen[silent, 0] = True
    flat = chosen.ravel()  # row-major: a row's reasons stay together, strongest first
    text = pa.array(sentences.ravel()[flat].astype(object), type=pa.string())
    code = pa.array(codes.ravel()[flat], type=pa.string())
    return text, code, chosen.sum(axis=1).astype(np.int64)


def _unexplained(
    model: ChurnModel,
    rows: pd.DataFrame,
    signed: npt.NDArray[np.float64],
    topics: list[Topic],
    bias: float,
    min_contribution: float,
) -> tuple[StrArray, npt.NDArray[np.object_]]:
    """The sentence, and its code, for customers no topic explains.

    Their risk is the model's starting point (the average score, calibrated: the risk of a
    customer it knows nothing about) moved by contributions too small to name. When the
    contributions together do not raise it, it is :data:`BASE_RATE`, and the factual topic
    that lowers it most is quoted; otherwise :data:`SMALL_EFFECTS`.
    """
    horizon = int(model.horizon_days)
    base = float(np.asarray(model.calibrator_(np.array([bias])), dtype=np.float64)[0])
    rate = getattr(model, "train_churn_rate_", None)
    seen = (
        f"; {round(100 * rate)}% of the customers in training ordered nothing within {horizon} days"
        if rate is not None
        else ""
    )
    head = f"risk is the shop's base rate ({round(100 * base)}% for an average customer{seen})"
    lift = signed.sum(axis=1)
    raised = lift > min_contribution
    out = np.where(
        raised,
        np.asarray(f"{head}, raised a little by several things, none enough to name", dtype=S),
        np.asarray(f"{head}: nothing in this customer's history raises it", dtype=S),
    ).astype(S)
    codes = np.where(raised, SMALL_EFFECTS, BASE_RATE).astype(object)
    factual = [t for t, topic in enumerate(topics) if topic.code in FACTUAL_TOPICS]
    if factual:
        values = Values(rows, horizon)
        low = signed[:, factual].copy()
        for j, t in enumerate(factual):
            code, applies = topics[t].code, topics[t].applies
            if code == "btyd" and applies is not None:  # only with both numbers known
                low[~np.asarray(applies(values), dtype=bool), j] = np.inf
            elif code == "recency":  # "no order for 300 days" lowers it: true, but reads wrong
                low[~(values["recency_days"] < horizon), j] = np.inf
        best = np.argmin(low, axis=1)
        lowers = (~raised) & (
            np.take_along_axis(low, best[:, None], axis=1)[:, 0] < -min_contribution
        )
        for j in np.unique(best[lowers]):
            at = np.flatnonzero(lowers & (best == j))
            said = topics[factual[j]].text(Values(rows.iloc[at], horizon))
            out[at] = _join(out[at], "; what lowers it most: ", said)
    return out, codes
