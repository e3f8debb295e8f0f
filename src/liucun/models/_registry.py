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
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from liucun.core import ConfigError

MODEL_FILE = "model.joblib"
CARD_FILE = "card.json"
#: Libraries whose versions a card records (a model is only trusted with the same ones).
RECORDED_LIBRARIES = ("liucun", "lightgbm", "scikit-learn", "numpy", "scipy", "pandas")
_VERSION = re.compile(r"^v(\d+)$")


@dataclass(frozen=True)
class ModelCard:
    """What a saved model is and how good it was on held-out time."""

    name: str
    version: str
    created_at: str
    as_of: str
    data_start: str
    data_end: str
    horizon_days: int
    customers: int
    features: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    libraries: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        data = json.loads(text)
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


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


def save_model(models_dir: Path, model: Any, card: dict[str, Any]) -> ModelCard:
    """Save ``model`` as the next version of ``card["name"]``; return the full card.

    ``card`` holds the :class:`ModelCard` fields except ``version``, ``created_at`` and
    ``libraries``, which are filled in here.
    """
    name = str(card["name"])
    if not re.fullmatch(r"[a-z][a-z0-9_-]*", name):
        raise ConfigError(f"model name {name!r}: use lower-case letters, digits, - and _")
    root = models_dir / name
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".saving-", dir=root))
    try:
        joblib.dump(model, staging / MODEL_FILE)
        for _ in range(100):
            number = max(_versions(root), default=0) + 1
            full = ModelCard(
                **{
                    **card,
                    "version": f"v{number}",
                    "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    "libraries": library_versions(),
                }
            )
            (staging / CARD_FILE).write_text(
                json.dumps(asdict(full), indent=2, default=str), encoding="utf-8"
            )
            try:
                staging.rename(root / full.version)
            except OSError:
                continue  # another training took this number: take the next
            return full
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
        raise ConfigError(
            f"no saved model {name!r} in {models_dir}; train one first with `liucun train`"
        )
    chosen = version or f"v{numbers[-1]}"
    folder = models_dir / name / chosen
    if not (folder / MODEL_FILE).is_file():
        known = ", ".join(f"v{n}" for n in numbers)
        raise ConfigError(f"model {name!r} has no version {chosen!r}; saved versions: {known}")
    card = ModelCard.from_json((folder / CARD_FILE).read_text(encoding="utf-8"))
    return joblib.load(folder / MODEL_FILE), card
