"""Loyalty: the points ledger, earning rules, tiers and the program file."""
