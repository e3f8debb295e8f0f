"""Assignment: which variant each unit gets, deterministically, GrowthBook-style.

Every decision is a bucket in [0, 1) from :func:`._hashing.buckets` under its own seed,
so the decisions are independent of each other and the same on every machine:

1. **layer** (seed ``"layer:" + name + salt``): experiments of one :class:`Layer` own
   disjoint slices of the layer's buckets, so a unit is in at most one of them;
2. **coverage** and **variant** (seed = the experiment's ``salt``, default its ``key``):
   variant *i* owns ``[c_i, c_i + coverage·w_i)`` where ``c_i`` is the cumulative weight
   of the variants before it (GrowthBook's bucket ranges); a bucket outside every range
   is not in the experiment;
3. **global holdout** (seed ``"holdout:" + salt``): a unit below the global share gets
   no treatment in any experiment — its variant is ``"holdout"``;
4. **campaign holdout** (seed ``key + ":holdout"``): the experiment's own held-out share,
   also variant ``"holdout"``.

Stickiness: the same inputs always give the same variant. Because variant ranges start
at fixed cumulative weights, changing weights moves only the units between the old and
the new boundaries (going from 50/50 to 40/60 moves exactly the 10 % in [0.4, 0.5) from
control to treatment); raising coverage only adds units. Changing the order of variants,
the salt, or a layer slice that precedes the experiment's re-shuffles units; append new
experiments at the end of a layer instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

import numpy as np
import pyarrow as pa

from liucun.core import ConfigError
from liucun.experiments._hashing import UnitIds, as_unit_ids, buckets

UnitType = Literal["user", "account"]
UNIT_TYPES: Final = ("user", "account")
#: Variant given to units held out of treatment (global or campaign holdout).
HOLDOUT: Final = "holdout"

ASSIGNMENT_SCHEMA: Final = pa.schema(
    [
        ("experiment", pa.string()),
        ("layer", pa.string()),
        ("unit_type", pa.string()),
        ("unit_id", pa.string()),
        ("variant", pa.string()),
        ("probability", pa.float64()),
        ("holdout", pa.bool_()),
    ]
)


def _share(name: str, value: float, *, upper_open: bool = False) -> None:
    ok = 0.0 <= value < 1.0 if upper_open else 0.0 <= value <= 1.0
    if not ok:
        top = "below 1" if upper_open else "at most 1"
        raise ConfigError(f"{name} must be a share ≥ 0 and {top}, got {value}")


@dataclass(frozen=True)
class Layer:
    """Mutually exclusive experiments: each owns a slice of the layer's buckets.

    ``slices`` lists ``(experiment key, share of the layer)`` in order; slices are laid
    end to end from 0, so appending an experiment moves no unit of the others.

    Examples
    --------
    >>> layer = Layer("checkout", (("free-shipping", 0.5), ("coupon-copy", 0.3)))
    >>> layer.range_of("coupon-copy")
    (0.5, 0.8)
    """

    name: str
    slices: tuple[tuple[str, float], ...]
    salt: str = ""

    def __post_init__(self) -> None:
        keys = [k for k, _ in self.slices]
        if len(set(keys)) != len(keys):
            raise ConfigError(f"layer {self.name!r} lists an experiment twice: {keys}")
        for key, share in self.slices:
            _share(f"layer {self.name!r} slice of {key!r}", share)
        total = sum(s for _, s in self.slices)
        if total > 1.0 + 1e-12:
            raise ConfigError(
                f"the slices of layer {self.name!r} add up to {total:g}, more than the whole "
                "layer; shrink them so they sum to at most 1"
            )

    def range_of(self, key: str) -> tuple[float, float]:
        """The ``[start, end)`` buckets of the layer that experiment ``key`` owns."""
        start = 0.0
        for k, share in self.slices:
            if k == key:
                return start, start + share
            start += share
        raise ConfigError(
            f"experiment {key!r} has no slice in layer {self.name!r}; add "
            f"({key!r}, share) to the layer's slices"
        )


@dataclass(frozen=True)
class GlobalHoldout:
    """A share of all units that no experiment or campaign treats (``share`` in [0, 1))."""

    share: float
    salt: str = "global"

    def __post_init__(self) -> None:
        _share("the global holdout share", self.share, upper_open=True)


@dataclass(frozen=True)
class Experiment:
    """An experiment or campaign: its variants, split, holdout and layer.

    Parameters
    ----------
    key
        Unique name; also the hash seed unless ``salt`` is given.
    variants
        Variant names; the first is the control by convention.
    weights
        Share of each variant (sums to 1); equal shares by default.
    coverage
        Share of eligible units that enter the experiment at all.
    holdout
        The campaign's own holdout: this share of the experiment's units gets variant
        ``"holdout"`` (no treatment), independently of the variant split.
    salt
        Hash seed; change it to re-randomize the same experiment (e.g. a new phase).
    layer
        A :class:`Layer` holding a slice for ``key``: mutually exclusive with the
        layer's other experiments.
    unit_type
        ``"user"`` or ``"account"`` (B2B: every user of an account gets its variant).
    """

    key: str
    variants: tuple[str, ...] = ("control", "treatment")
    weights: tuple[float, ...] | None = None
    coverage: float = 1.0
    holdout: float = 0.0
    salt: str = ""
    layer: Layer | None = None
    unit_type: UnitType = "user"
    _weights: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.key:
            raise ConfigError("an experiment needs a non-empty key")
        if not self.variants or len(set(self.variants)) != len(self.variants):
            raise ConfigError(f"variants must be distinct names, got {list(self.variants)}")
        if HOLDOUT in self.variants:
            raise ConfigError(
                f"{HOLDOUT!r} is reserved for held-out units; use the holdout share instead"
            )
        if self.unit_type not in UNIT_TYPES:
            raise ConfigError(f"unit_type must be 'user' or 'account', got {self.unit_type!r}")
        _share("coverage", self.coverage)
        _share("the campaign holdout", self.holdout, upper_open=True)
        weights = self.weights or tuple(1.0 / len(self.variants) for _ in self.variants)
        if len(weights) != len(self.variants):
            raise ConfigError(
                f"{len(weights)} weights for {len(self.variants)} variants; give one each"
            )
        if any(w < 0 for w in weights) or abs(sum(weights) - 1.0) > 1e-9:
            raise ConfigError(
                f"weights must be ≥ 0 and sum to 1, got {list(weights)} (sum {sum(weights):g})"
            )
        if self.layer is not None:
            self.layer.range_of(self.key)
        object.__setattr__(self, "_weights", tuple(float(w) for w in weights))

    @property
    def seed(self) -> str:
        """The hash seed of the variant split."""
        return self.salt or self.key

    def ranges(self) -> list[tuple[float, float]]:
        """Each variant's ``[start, end)`` of the split's buckets (GrowthBook's ranges)."""
        out, start = [], 0.0
        for w in self._weights:
            out.append((start, start + self.coverage * w))
            start += w
        return out


def assign(
    experiment: Experiment, units: UnitIds, *, global_holdout: GlobalHoldout | None = None
) -> pa.Table:
    """Assign every unit id: one row per id, in input order.

    Returns an Arrow table with :data:`ASSIGNMENT_SCHEMA`: ``experiment, layer,
    unit_type, unit_id, variant, probability, holdout``. ``variant`` is null for units
    outside the experiment (another layer slice, or beyond ``coverage``), ``"holdout"``
    for held-out units. ``probability`` is the chance of the row's outcome for a unit in
    the experiment: ``g`` for the global holdout, ``(1 − g)·h`` for the campaign holdout,
    ``(1 − g)(1 − h)·w_v`` for variant ``v``.

    Examples
    --------
    >>> exp = Experiment("winback-coupon", holdout=0.1)
    >>> assign(exp, ["u1", "u2"]).column("variant").to_pylist()
    ['treatment', 'control']
    """
    ids = as_unit_ids(units)
    n = ids.size
    inside = np.ones(n, dtype=bool)
    if experiment.layer is not None:
        lo, hi = experiment.layer.range_of(experiment.key)
        u = buckets(f"layer:{experiment.layer.name}{experiment.layer.salt}", ids)
        inside &= (u >= lo) & (u < hi)
    v = buckets(experiment.seed, ids)
    index = np.full(n, -1)
    for i, (start, end) in enumerate(experiment.ranges()):
        index = np.where((index < 0) & (v >= start) & (v < end), i, index)
    inside &= index >= 0
    g = global_holdout.share if global_holdout is not None else 0.0
    h = experiment.holdout
    held_global = np.zeros(n, dtype=bool)
    if g > 0 and global_holdout is not None:
        held_global = buckets(f"holdout:{global_holdout.salt}", ids) < g
    held_campaign = np.zeros(n, dtype=bool)
    if h > 0:
        held_campaign = ~held_global & (buckets(f"{experiment.key}:holdout", ids) < h)
    held = held_global | held_campaign
    names = np.array([*experiment.variants, HOLDOUT], dtype=object)
    weights = np.array([*experiment._weights, 0.0])
    variant = np.where(held, len(experiment.variants), index)
    prob = np.where(
        held_global, g, np.where(held_campaign, (1 - g) * h, (1 - g) * (1 - h) * weights[variant])
    )
    mask = ~inside
    layer = experiment.layer.name if experiment.layer is not None else None
    return pa.table(
        {
            "experiment": pa.array(np.full(n, experiment.key, dtype=object), pa.string()),
            "layer": pa.array([layer] * n, pa.string()),
            "unit_type": pa.array(np.full(n, experiment.unit_type, dtype=object), pa.string()),
            "unit_id": pa.array(ids, pa.string()),
            "variant": pa.array(names[variant], pa.string(), mask=mask),
            "probability": pa.array(prob, pa.float64(), mask=mask),
            "holdout": pa.array(held & inside, pa.bool_()),
        },
        schema=ASSIGNMENT_SCHEMA,
    )
