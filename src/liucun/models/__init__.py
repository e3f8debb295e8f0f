"""Predictive models: customer summaries, buy-till-you-die models (``liucun.models.btyd``)."""

from liucun.models._summary import customer_summary

__all__ = ["customer_summary"]
