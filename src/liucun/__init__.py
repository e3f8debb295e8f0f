"""liucun (留存): a retention engine for e-commerce."""

__version__ = "0.1.0"
