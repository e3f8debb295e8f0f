"""Segments: RFM (11 named segments and the 8-class model)."""

from liucun.segments._rfm import CLASSES, SEGMENT_GRID, SEGMENTS, rfm

__all__ = ["CLASSES", "SEGMENTS", "SEGMENT_GRID", "rfm"]
