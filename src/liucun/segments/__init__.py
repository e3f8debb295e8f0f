"""Segments: RFM (11 named segments and the 8-class model), lifecycle stages."""

from liucun.segments._rfm import CLASSES, SEGMENT_GRID, SEGMENTS, rfm
from liucun.segments._stages import STAGES, StageRules, lifecycle_stages, stage_transitions

__all__ = [
    "CLASSES",
    "SEGMENTS",
    "SEGMENT_GRID",
    "STAGES",
    "StageRules",
    "lifecycle_stages",
    "rfm",
    "stage_transitions",
]
