"""Loaders for the public research datasets used to validate liucun's models.

The data live in ``shared/datasets`` beside the project (see :func:`datasets_dir`) and
are never copied into the repository.
"""

from liucun.datasets._cdnow import CdnowData, load_cdnow
from liucun.datasets._donations import load_donations
from liucun.datasets._paths import datasets_dir
from liucun.datasets._rft import cdnow_rft

__all__ = [
    "CdnowData",
    "cdnow_rft",
    "datasets_dir",
    "load_cdnow",
    "load_donations",
]
