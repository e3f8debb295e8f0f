"""Seeded synthetic randomized campaigns with a known effect function (CATE)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Campaign:
    X: np.ndarray
    treated: np.ndarray
    y: np.ndarray
    tau: np.ndarray


def baseline(X: np.ndarray) -> np.ndarray:
    """Outcome without treatment: non-linear, so outcome models need data."""
    return 2.0 * np.sin(2.0 * X[:, 0]) + X[:, 1] ** 2 + 0.5 * X[:, 4]


def effect(X: np.ndarray) -> np.ndarray:
    """The true CATE: simple, and negative for part of the population."""
    return 0.5 * X[:, 2] + 0.5 * (X[:, 3] > 0)


def campaign(n: int, *, p: float = 0.5, seed: int = 0, noise: float = 1.0) -> Campaign:
    """``n`` units, treated with probability ``p``, ``y = baseline + T·τ + noise``."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    tau = effect(X)
    t = rng.random(n) < p
    y = baseline(X) + t * tau + noise * rng.standard_normal(n)
    return Campaign(X, t, y, tau)


def binary_campaign(n: int, *, p: float = 0.5, seed: int = 0) -> Campaign:
    """Binary outcome: P(y = 1) = 0.3 + 0.1·tanh(x0) + T·τ_b with τ_b = 0.15·(x2 > 0) − 0.05."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    tau = 0.15 * (X[:, 2] > 0) - 0.05
    t = rng.random(n) < p
    prob = 0.3 + 0.1 * np.tanh(X[:, 0]) + t * tau
    y = (rng.random(n) < prob).astype(float)
    return Campaign(X, t, y, tau)
