"""Saved models: versions, cards, loading, and refusals in sentences."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from liucun.core import ConfigError, SimulatedClock
from liucun.models import ModelCard, ModelDraft, list_models, load_model, save_model

CARD = ModelDraft(
    name="retention",
    as_of=datetime(2026, 9, 30, tzinfo=UTC),
    data_start=datetime(2025, 10, 1),  # naive means UTC
    data_end=datetime(2026, 9, 30, tzinfo=UTC),
    horizon_days=90,
    customers=1234,
    features=["recency_days", "frequency"],
    metrics={"auc": 0.81},
)
NOW = datetime(2026, 10, 1, 8, 30, 15, 123456, tzinfo=UTC)


def _save(root: Path, model: object, draft: ModelDraft = CARD) -> ModelCard:
    return save_model(root, model, draft, now=NOW)


def test_versions_count_up_and_load_back(tmp_path: Path) -> None:
    first = _save(tmp_path, {"weights": [1, 2, 3]})
    second = _save(tmp_path, {"weights": [4]}, dataclasses.replace(CARD, metrics={"auc": 0.83}))
    assert (first.version, second.version) == ("v1", "v2")
    assert second.created_at == datetime(2026, 10, 1, 8, 30, 15, tzinfo=UTC)  # from `now`
    assert second.data_start == datetime(2025, 10, 1, tzinfo=UTC)
    assert second.libraries["lightgbm"] and second.libraries["python"]
    latest, card = load_model(tmp_path, "retention")
    assert latest == {"weights": [4]} and card == second
    older, card = load_model(tmp_path, "retention", "v1")
    assert older == {"weights": [1, 2, 3]} and card.metrics == {"auc": 0.81}
    assert [c.version for c in list_models(tmp_path)] == ["v1", "v2"]
    text = (tmp_path / "retention" / "v2" / "card.json").read_text()
    on_disk = json.loads(text)
    assert on_disk["created_at"] == "2026-10-01T08:30:15+00:00"
    assert on_disk["data_start"] == "2025-10-01T00:00:00+00:00"
    assert ModelCard.from_json(text) == second
    assert ModelCard.from_json(second.to_json()) == second
    assert not list(tmp_path.glob("retention/.saving-*"))  # no staging left behind


def test_a_taken_version_number_moves_on(tmp_path: Path) -> None:
    (tmp_path / "retention" / "v1").mkdir(parents=True)  # e.g. another training's
    assert _save(tmp_path, 1).version == "v2"


def test_unknown_values_are_none_and_old_cards_still_read() -> None:
    """A card written before typed cards ("" placeholders, naive instants) reads back with
    None for the unknowns and aware UTC instants."""
    old = {
        "name": "uplift",
        "version": "v1",
        "created_at": "2026-10-01T08:30:15+00:00",
        "as_of": "2026-06-15 00:00:00+00:00",
        "data_start": "",
        "data_end": "2026-06-15T00:00:00",
        "horizon_days": 30,
        "customers": 10,
        "retired_key": 1,
    }
    card = ModelCard.from_json(json.dumps(old))
    assert card.data_start is None
    assert card.data_end == card.as_of == datetime(2026, 6, 15, tzinfo=UTC)
    assert json.loads(card.to_json())["data_start"] is None


def test_the_clock_of_a_workspace_dates_the_card(tmp_path: Path) -> None:
    clock = SimulatedClock(datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC))
    card = save_model(tmp_path, 1, CARD, now=clock.now())
    assert card.created_at == clock.now()


def test_missing_models_are_explained(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="train one first"):
        load_model(tmp_path, "retention")
    _save(tmp_path, 1)
    with pytest.raises(ConfigError, match="no version 'v9'; saved versions: v1") as caught:
        load_model(tmp_path, "retention", "v9")
    assert caught.value.hint is not None and caught.value.hint.option == "version"
    assert caught.value.hint.example == "v1" and "--" not in str(caught.value)
    with pytest.raises(ConfigError, match="model name"):
        _save(tmp_path, 1, dataclasses.replace(CARD, name="../evil"))


def test_card_values_are_made_json_ready() -> None:
    import math

    import numpy as np
    import pandas as pd

    from liucun.models._registry import json_ready

    got = json_ready({"a": np.float64(1.5), "b": [np.int64(2), float("nan")], "c": (pd.NA, 3)})
    assert got == {"a": 1.5, "b": [2, None], "c": [None, 3]}
    assert type(got["a"]) is float and type(got["b"][0]) is int
    assert json_ready(math.inf) is None
