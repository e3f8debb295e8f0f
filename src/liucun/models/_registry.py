"""Saved models: one directory per version in the workspace, with a quality card.

``WORKSPACE/models/NAME/vN/`` holds ``model.joblib`` (the fitted objects) and
``card.json`` (what it was trained on, its metrics against the baselines, the library
versions). A version is written to a temporary directory and renamed into place, so a
reader never sees half a model, and two trainings at once get different versions.
Loading unpickles the file: only load models your own workspace wrote.
"""

from __future__ import annotations

import json
import math
import platform
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from liucun.core import ConfigError, Hint, as_utc

MODEL_FILE = "model.joblib"
CARD_FILE = "card.json"
#: Libraries whose versions a card records (a model is only trusted with the same ones).
RECORDED_LIBRARIES = ("liucun", "lightgbm", "scikit-learn", "numpy", "scipy", "pandas")
_VERSION = re.compile(r"^v(\d+)$")
_INSTANTS = ("created_at", "as_of", "data_start", "data_end")


@dataclass(frozen=True)
class CardWarning:
    """Something a reader of the card must know before trusting a number on it, e.g. a
    baseline that ranks worse than random.

    ``code`` says what kind (``"worse_than_random"``), ``text`` is the sentence to show,
    ``subject`` what it is about (a scorer such as ``"btyd_p_dead"``), ``measured`` the
    figure behind it (its AUC) and ``reference`` what that figure is judged against (0.5).
    """

    code: str
    text: str
    subject: str | None = None
    measured: float | None = None
    reference: float | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CardWarning:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class ModelDraft:
    """What a training says about the model it saves; :func:`save_model` completes it
    into a :class:`ModelCard`. Instants are aware UTC (naive ones are read as UTC);
    ``None`` where unknown."""

    name: str
    as_of: datetime | None
    data_start: datetime | None
    data_end: datetime | None
    horizon_days: int | None
    customers: int
    features: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    warnings: list[CardWarning] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name in ("as_of", "data_start", "data_end"):
            _set_utc(self, name)


@dataclass(frozen=True)
class ModelCard:
    """What a saved model is and how good it was on held-out time.

    ``created_at``, ``as_of``, ``data_start`` and ``data_end`` are aware UTC datetimes
    (``None`` where unknown, e.g. an uplift model's data start); ``metrics`` and
    ``params`` hold JSON-ready values (:func:`json_ready`). ``notes`` are sentences to
    read; ``warnings`` (:class:`CardWarning`) are the ones a reader must not miss, typed so
    a report can show them apart (their text is also among the notes). :meth:`to_json`
    and :meth:`from_json` round-trip it.
    """

    name: str
    version: str
    created_at: datetime
    as_of: datetime | None
    data_start: datetime | None
    data_end: datetime | None
    horizon_days: int | None
    customers: int
    features: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    libraries: dict[str, str] = field(default_factory=dict)
    warnings: list[CardWarning] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name in _INSTANTS:
            _set_utc(self, name)

    @property
    def currency(self) -> str | None:
        """The reporting currency the model's money (CLV, monetary features) is in, or
        None when it was trained on amounts as recorded (no ``[reporting] currency``)."""
        value = (self.params or {}).get("currency")
        return str(value) if value else None

    @property
    def money_unit(self) -> str:
        """How a money figure of this model reads: ``"CNY"``, or ``"in the orders'
        currencies"`` when it was trained without a reporting currency."""
        return self.currency or "in the orders' currencies"

    @classmethod
    def from_draft(
        cls, draft: ModelDraft, *, version: str, created_at: datetime, libraries: dict[str, str]
    ) -> ModelCard:
        """The card of ``draft`` saved as ``version`` at ``created_at``."""
        values = {f.name: getattr(draft, f.name) for f in fields(draft)}
        return cls(**values, version=version, created_at=created_at, libraries=libraries)

    def to_dict(self) -> dict[str, Any]:
        """The card as JSON values: instants as ISO 8601 strings, unknowns as null."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in _INSTANTS:
            out[name] = None if out[name] is None else out[name].isoformat()
        out["warnings"] = [asdict(w) for w in self.warnings]
        return json_ready(out)  # type: ignore[no-any-return]

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        """Read a card written by :meth:`to_json` (or by an older liucun: naive instants
        are UTC, ``""`` means unknown; unknown keys are ignored)."""
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for name in _INSTANTS:
            raw = values.get(name)
            values[name] = datetime.fromisoformat(raw) if raw else None
        if values.get("horizon_days") in ("", None):
            values["horizon_days"] = None
        values["warnings"] = [CardWarning.from_dict(w) for w in values.get("warnings") or []]
        return cls(**values)


def _set_utc(card: object, name: str) -> None:
    value = getattr(card, name)
    if value is None:
        return
    if not isinstance(value, datetime):
        raise ConfigError(f"{name} must be a datetime or None, got {value!r}")
    object.__setattr__(card, name, as_utc(value))


def json_ready(value: Any) -> Any:
    """``value`` with NumPy scalars as Python ones, NaN/NA as None and tuples as lists,
    through dicts and lists: what a card's ``metrics`` may hold."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries a model depends on."""
    out = {"python": platform.python_version()}
    for lib in RECORDED_LIBRARIES:
        try:
            out[lib] = version(lib)
        except PackageNotFoundError:
            out[lib] = "not installed"
    return out


def _versions(root: Path) -> list[int]:
    if not root.is_dir():
        return []
    found = (_VERSION.match(p.name) for p in root.iterdir() if p.is_dir())
    return sorted(int(m.group(1)) for m in found if m)


def save_model(models_dir: Path, model: Any, draft: ModelDraft, *, now: datetime) -> ModelCard:
    """Save ``model`` as the next version of ``draft.name``; return its card.

    ``now`` (e.g. ``workspace.clock.now()``) becomes the card's ``created_at``; the
    version number and the library versions are filled in here.
    """
    name = draft.name
    if not re.fullmatch(r"[a-z][a-z0-9_-]*", name):
        raise ConfigError(
            f"model name {name!r}: use lower-case letters, digits, - and _",
            hint=Hint(option="name", example="retention"),
        )
    created_at = as_utc(now).replace(microsecond=0)
    root = models_dir / name
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".saving-", dir=root))
    try:
        joblib.dump(model, staging / MODEL_FILE)
        for _ in range(100):
            number = max(_versions(root), default=0) + 1
            card = ModelCard.from_draft(
                draft, version=f"v{number}", created_at=created_at, libraries=library_versions()
            )
            (staging / CARD_FILE).write_text(card.to_json(), encoding="utf-8")
            try:
                staging.rename(root / card.version)
            except OSError:
                continue  # another training took this number: take the next
            return card
        raise ConfigError(f"could not find a free version number under {root}")
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def list_models(models_dir: Path, name: str | None = None) -> list[ModelCard]:
    """Every saved model's card (of one ``name``, or all), oldest version first."""
    names = [name] if name else sorted(p.name for p in models_dir.glob("*") if p.is_dir())
    cards = []
    for n in names:
        for number in _versions(models_dir / n):
            path = models_dir / n / f"v{number}" / CARD_FILE
            if path.is_file():
                cards.append(ModelCard.from_json(path.read_text(encoding="utf-8")))
    return cards


def load_model(models_dir: Path, name: str, version: str | None = None) -> tuple[Any, ModelCard]:
    """The saved model ``name`` at ``version`` (default: the latest) and its card."""
    numbers = _versions(models_dir / name)
    if not numbers:
        raise ConfigError(f"no saved model {name!r} in {models_dir}; train one first")
    chosen = version or f"v{numbers[-1]}"
    folder = models_dir / name / chosen
    if not (folder / MODEL_FILE).is_file():
        known = ", ".join(f"v{n}" for n in numbers)
        raise ConfigError(
            f"model {name!r} has no version {chosen!r}; saved versions: {known}",
            hint=Hint(option="version", example=f"v{numbers[-1]}"),
        )
    card = ModelCard.from_json((folder / CARD_FILE).read_text(encoding="utf-8"))
    return joblib.load(folder / MODEL_FILE), card
