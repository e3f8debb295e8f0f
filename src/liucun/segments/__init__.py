"""Segments: RFM (11 named segments and the 8-class model), lifecycle stages, the
segment filter language, and customers per segment (:func:`segment_summary`)."""

from liucun.segments._filter import MAX_DEPTH, MAX_LENGTH, FilterSyntaxError, parse_filter
from liucun.segments._profiles import customer_profiles
from liucun.segments._rfm import CLASSES, SEGMENT_GRID, SEGMENTS, rfm
from liucun.segments._stages import STAGES, StageRules, lifecycle_stages, stage_transitions
from liucun.segments._summary import SEGMENT_COLUMNS, SegmentBy, segment_customers, segment_summary
from liucun.segments._tags import TAG_COLUMNS, customer_tags, tag_summary

__all__ = [
    "CLASSES",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "SEGMENTS",
    "SEGMENT_COLUMNS",
    "SEGMENT_GRID",
    "STAGES",
    "TAG_COLUMNS",
    "FilterSyntaxError",
    "SegmentBy",
    "StageRules",
    "customer_profiles",
    "customer_tags",
    "lifecycle_stages",
    "parse_filter",
    "rfm",
    "segment_customers",
    "segment_summary",
    "stage_transitions",
    "tag_summary",
]
