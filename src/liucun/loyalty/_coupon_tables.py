"""State tables of coupons and benefits (on the state models' declarative ``Base``, so
the migrations and the models-match-migrations test see them once this module is
imported; migration ``0003``).

- ``loyalty_coupon_codes``: one row per issued code. The definition's terms (kind,
  amount, minimum order, categories, validity) and the limits in force when it was
  issued (per-customer count, cap, budgets) are copied onto the row, so a later edit of
  the program changes neither what a code is worth nor what :func:`coupon_check` holds
  it to. ``status`` is ``issued``, ``redeemed`` or ``expired``.
- ``loyalty_coupon_redemptions``: one row per redemption; ``code_id`` is unique, so the
  database itself refuses a second redemption of a code. ``discount`` is the cost booked
  for ROI, in ``currency`` (the program's).
- ``loyalty_benefit_grants``: a benefit bought with points; ``ledger_key`` is the
  ledger redemption written in the same transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from liucun.state import Base, UTCDateTime
from liucun.state._models import BigId


class CouponCode(Base):
    """One issued single-use code (see the module docstring)."""

    __tablename__ = "loyalty_coupon_codes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    request: Mapped[str] = mapped_column(Text)
    program: Mapped[str] = mapped_column(String(200))
    coupon_id: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10))
    amount: Mapped[float] = mapped_column(Float)
    min_order: Mapped[float] = mapped_column(Float)
    categories: Mapped[str | None] = mapped_column(Text)
    currency: Mapped[str] = mapped_column(String(3))
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    #: The calendar period (its first day, program time zone) the cap counts it in.
    period_start: Mapped[str] = mapped_column(String(10))
    per_customer: Mapped[int | None] = mapped_column(Integer)
    cap_amount: Mapped[float | None] = mapped_column(Float)
    cap_per: Mapped[str | None] = mapped_column(String(10))
    coupon_budget: Mapped[float | None] = mapped_column(Float)
    program_budget: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(10))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_loyalty_coupon_codes_program_user", "program", "user_id", "coupon_id"),
        Index("ix_loyalty_coupon_codes_status", "status"),
    )


class CouponRedemption(Base):
    """One redemption of a code on an order (``code_id`` unique: at most one)."""

    __tablename__ = "loyalty_coupon_redemptions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code_id: Mapped[int] = mapped_column(ForeignKey("loyalty_coupon_codes.id"), unique=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    request: Mapped[str] = mapped_column(Text)
    order_id: Mapped[str] = mapped_column(String(200))
    order_value: Mapped[float] = mapped_column(Float)
    discount: Mapped[float] = mapped_column(Float)
    currency: Mapped[str] = mapped_column(String(3))
    source_event_id: Mapped[str | None] = mapped_column(String(200))
    redeemed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BenefitGrant(Base):
    """A benefit bought with points (the ledger redemption ``ledger_key`` paid for it)."""

    __tablename__ = "loyalty_benefit_grants"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    request: Mapped[str] = mapped_column(Text)
    program: Mapped[str] = mapped_column(String(200))
    benefit_id: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[str] = mapped_column(String(200))
    points: Mapped[int] = mapped_column(BigInteger)
    value: Mapped[float] = mapped_column(Float)
    ledger_key: Mapped[str] = mapped_column(String(200))
    period_start: Mapped[str] = mapped_column(String(10))
    per_customer: Mapped[int | None] = mapped_column(Integer)
    period: Mapped[str] = mapped_column(String(10))
    budget: Mapped[float | None] = mapped_column(Float)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_loyalty_benefit_grants_program_user", "program", "user_id", "benefit_id"),
    )
