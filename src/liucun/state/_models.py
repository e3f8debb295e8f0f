"""The operational tables (SQLAlchemy 2 declarative models).

State is the source of truth for operational rows; the warehouse receives read-only
copies by :func:`liucun.workspace.sync`. Every schema change is an Alembic migration in
``state/migrations/versions`` (never ``create_all``), so a workspace made by an older
liucun is upgraded in place.

Times are stored as UTC. SQLite keeps no time zone, so :class:`UTCDateTime` hands every
value back time-zone-aware in UTC on both backends.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: Constraint names that Alembic migrations can refer to on every backend.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Auto-increment keys: BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned aware (``tzinfo=UTC``)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Base of every state model."""

    metadata = MetaData(naming_convention=NAMING)


class Exposure(Base):
    """One assignment that reached a unit (the columns of the warehouse's ``exposures``).

    ``id`` orders the log: the sync copies rows with an id above its cursor.
    """

    __tablename__ = "exposures"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    exposure_id: Mapped[str] = mapped_column(String(64), unique=True)
    experiment: Mapped[str] = mapped_column(String(200))
    layer: Mapped[str | None] = mapped_column(String(200))
    unit_type: Mapped[str] = mapped_column(String(20))
    unit_id: Mapped[str] = mapped_column(String(200))
    variant: Mapped[str] = mapped_column(String(200))
    probability: Mapped[float] = mapped_column(Float)
    holdout: Mapped[bool] = mapped_column(Boolean)
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    load_id: Mapped[str] = mapped_column(String(100))

    __table_args__ = (Index("ix_exposures_experiment_unit", "experiment", "unit_type", "unit_id"),)


class AuditEntry(Base):
    """Who did what to the workspace, when (append-only)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100), index=True)
    target: Mapped[str | None] = mapped_column(String(400))
    details: Mapped[str | None] = mapped_column(Text)


class WorkspaceSecret(Base):
    """Metadata of a workspace secret: never the secret itself.

    ``fingerprint`` is an HMAC of a fixed message under the key, so a wrong key (another
    workspace's, or a mistyped ``LIUCUN_SECRET_KEY``) is detected before it hashes data.
    """

    __tablename__ = "workspace_secrets"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    fingerprint: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("uq_workspace_secrets_name_version", "name", "version", unique=True),)


# -- the loyalty ledger (docs/loyalty.md) --------------------------------------------------
#
# Double-entry and append-only: a write is one ``loyalty_transactions`` row (unique
# idempotency key) and its ``loyalty_entries`` legs, which sum to zero per unit. A member
# leg names the member's account (and the lot it adds to or takes from); the other side
# is a program account named by ``program_account`` (issued, redeemed, expired,
# adjustment, growth). Member accounts carry the materialized balance and version; program
# accounts are not materialized (every award would lock one hot row): their balance is
# the sum of their legs. Entries are never updated or deleted; a correction is a reversal.


class LoyaltyProgramPolicy(Base):
    """A program's ledger policy; a program without a row uses the defaults (forbid
    negative balances)."""

    __tablename__ = "loyalty_programs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    allow_negative: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LoyaltyProgramVersion(Base):
    """One applied version of a program file (``liucun loyalty program apply``): its
    canonical JSON and digest. The highest version of a program is the one in force;
    applying the same content again adds nothing."""

    __tablename__ = "loyalty_program_versions"
    __table_args__ = (
        UniqueConstraint("program", "version", name="uq_loyalty_program_versions_version"),
        UniqueConstraint("program", "digest", name="uq_loyalty_program_versions_digest"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    program: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime)
    applied_by: Mapped[str] = mapped_column(String(200))


class LoyaltyAccount(Base):
    """A member's account in one program, opened by its first write.

    ``balance`` (points, pending ones included) and ``growth_value`` always equal the sum
    of the account's legs; ``version`` counts the transactions that touched it.
    """

    __tablename__ = "loyalty_accounts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    program: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[str] = mapped_column(String(200))
    balance: Mapped[int] = mapped_column(BigInteger)
    growth_value: Mapped[int] = mapped_column(BigInteger)
    version: Mapped[int] = mapped_column(Integer)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("uq_loyalty_accounts_program_user", "program", "user_id", unique=True),)


class LoyaltyTransaction(Base):
    """One ledger write: what was asked (``request``, canonical JSON, to refuse a reused
    key with other arguments) and what it did to the member's account."""

    __tablename__ = "loyalty_transactions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    program: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[str] = mapped_column(String(200))
    account_id: Mapped[int] = mapped_column(ForeignKey("loyalty_accounts.id"), index=True)
    points: Mapped[int] = mapped_column(BigInteger)
    growth: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(Text)
    request: Mapped[str] = mapped_column(Text)
    #: The transaction this one reverses; unique, so nothing is reversed twice.
    reverses_id: Mapped[int | None] = mapped_column(
        ForeignKey("loyalty_transactions.id"), unique=True
    )
    balance_after: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: When what it books happened (an accrued order's time), if not ``created_at``:
    #: tiers count growth value in their window by this time (migration 0005).
    earned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LoyaltyLot(Base):
    """Points of one addition: when they become available and when they expire.

    ``remaining`` is materialized (the sum of the member legs on the lot); redemptions
    take from lots in expiry order (FIFO), expiry takes what is left.
    """

    __tablename__ = "loyalty_lots"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("loyalty_accounts.id"))
    transaction_id: Mapped[int] = mapped_column(ForeignKey("loyalty_transactions.id"))
    points: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)

    __table_args__ = (Index("ix_loyalty_lots_account_remaining", "account_id", "remaining"),)


class LoyaltyEntry(Base):
    """One leg of a transaction (append-only): ``amount`` of ``unit`` (points or growth)
    on a member account (``account_id``, with its ``lot_id`` for points) or on the
    program account ``program_account``."""

    __tablename__ = "loyalty_entries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("loyalty_transactions.id"), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("loyalty_accounts.id"), index=True)
    lot_id: Mapped[int | None] = mapped_column(ForeignKey("loyalty_lots.id"), index=True)
    program_account: Mapped[str | None] = mapped_column(String(40))
    unit: Mapped[str] = mapped_column(String(10))
    amount: Mapped[int] = mapped_column(BigInteger)


# -- coupons and benefits (docs/loyalty.md, migration 0003) -------------------------------
#
# - ``loyalty_coupon_codes``: one row per issued code. The definition's terms (kind,
#   amount, minimum order, categories, validity) and the limits in force when it was
#   issued (per-customer count, cap, budgets) are copied onto the row, so a later edit of
#   the program changes neither what a code is worth nor what :func:`coupon_check` holds
#   it to. ``status`` is ``issued``, ``redeemed`` or ``expired``.
# - ``loyalty_coupon_redemptions``: one row per redemption; ``code_id`` is unique, so the
#   database itself refuses a second redemption of a code. ``discount`` is the cost booked
#   for ROI, in ``currency`` (the program's).
# - ``loyalty_benefit_grants``: a benefit bought with points; ``ledger_key`` is the
#   ledger redemption written in the same transaction.


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


# -- tiers, accrual runs, loss aversion, membership, referrals (migration 0005) -----------
#
# - ``loyalty_member_tiers``: each member's tier in force (one row per program and
#   member), with the review and grace bookkeeping of liucun.loyalty.evaluate_tiers and a
#   temporary upgrade (``boost_tier`` until ``boost_until``, the recall package's).
# - ``loyalty_tier_history``: every tier change, append-only; ``event_id`` is the id of
#   the ``tier_changed`` event written to the warehouse.
# - ``loyalty_accrual_runs``: one row per ``liucun loyalty accrue`` run: the window of
#   events it read (``since`` .. ``until``) and what it wrote; the next run starts where
#   the last finished one ended.
# - ``loyalty_notices``: silence warnings, decays and recall packages (``kind``), keyed so
#   that running the loss-aversion rules again adds nothing.
# - ``loyalty_memberships`` / ``loyalty_membership_events``: paid membership (付费会员):
#   a member's plan and current term, and every join, renewal, reminder, lapse and
#   cancellation (append-only, keyed).
# - ``loyalty_referral_codes`` / ``loyalty_referrals``: invite codes and who used whose;
#   a referee is referred at most once per program.


class LoyaltyMemberTier(Base):
    """A member's tier in force (see the block comment above)."""

    __tablename__ = "loyalty_member_tiers"
    __table_args__ = (
        UniqueConstraint("program", "user_id", name="uq_loyalty_member_tiers_program_user"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    program: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[str] = mapped_column(String(200))
    tier: Mapped[str] = mapped_column(String(100))
    growth_in_window: Mapped[float] = mapped_column(Float)
    tier_since: Mapped[datetime] = mapped_column(UTCDateTime)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    grace_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    boost_tier: Mapped[str | None] = mapped_column(String(100))
    boost_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LoyaltyTierChange(Base):
    """One tier change of a member (append-only)."""

    __tablename__ = "loyalty_tier_history"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(300), unique=True)
    program: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[str] = mapped_column(String(200), index=True)
    from_tier: Mapped[str | None] = mapped_column(String(100))
    to_tier: Mapped[str] = mapped_column(String(100))
    direction: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(Text)
    growth_in_window: Mapped[float] = mapped_column(Float)
    program_digest: Mapped[str] = mapped_column(String(64))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class LoyaltyAccrualRun(Base):
    """One accrual run (``liucun loyalty accrue``)."""

    __tablename__ = "loyalty_accrual_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    program: Mapped[str] = mapped_column(String(100), index=True)
    program_digest: Mapped[str] = mapped_column(String(64))
    since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    until: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20))
    events_read: Mapped[int] = mapped_column(BigInteger)
    rows_planned: Mapped[int] = mapped_column(BigInteger)
    written: Mapped[int] = mapped_column(BigInteger)
    replayed: Mapped[int] = mapped_column(BigInteger)
    limited: Mapped[int] = mapped_column(BigInteger)
    details: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_by: Mapped[str] = mapped_column(String(200))


class LoyaltyNotice(Base):
    """A silence warning, decay or recall package sent to a member (keyed)."""

    __tablename__ = "loyalty_notices"
    __table_args__ = (Index("ix_loyalty_notices_program_user_kind", "program", "user_id", "kind"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    program: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(30))
    points: Mapped[int] = mapped_column(BigInteger)
    details: Mapped[str] = mapped_column(Text)
    event_id: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class LoyaltyMembership(Base):
    """A member's paid plan and current term (``status``: active, lapsed, cancelled)."""

    __tablename__ = "loyalty_memberships"
    __table_args__ = (
        UniqueConstraint(
            "program", "user_id", "plan_id", name="uq_loyalty_memberships_program_user_plan"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    program: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[str] = mapped_column(String(200), index=True)
    plan_id: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime)
    term_start: Mapped[datetime] = mapped_column(UTCDateTime)
    term_end: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    auto_renew: Mapped[bool] = mapped_column(Boolean)
    renewals: Mapped[int] = mapped_column(Integer)
    price: Mapped[float] = mapped_column(Float)
    currency: Mapped[str] = mapped_column(String(3))
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LoyaltyMembershipEvent(Base):
    """A join, renew, reminder, lapse or cancel of a membership (append-only, keyed)."""

    __tablename__ = "loyalty_membership_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    request: Mapped[str] = mapped_column(Text)
    membership_id: Mapped[int] = mapped_column(ForeignKey("loyalty_memberships.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    term_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    term_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    amount: Mapped[float] = mapped_column(Float)
    currency: Mapped[str] = mapped_column(String(3))
    event_id: Mapped[str | None] = mapped_column(String(300))


class LoyaltyReferralCode(Base):
    """An invite code of a referrer."""

    __tablename__ = "loyalty_referral_codes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    program: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[str] = mapped_column(String(200), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LoyaltyReferral(Base):
    """A referee who used a code (``status``: pending, credited, refused)."""

    __tablename__ = "loyalty_referrals"
    __table_args__ = (
        UniqueConstraint("program", "referee_id", name="uq_loyalty_referrals_program_referee"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    program: Mapped[str] = mapped_column(String(100))
    code: Mapped[str] = mapped_column(String(40), index=True)
    referrer_id: Mapped[str] = mapped_column(String(200), index=True)
    referee_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)
    referred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    first_order_event_id: Mapped[str | None] = mapped_column(String(300))
    credited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The idempotency key of the write that recorded the referral.
    key: Mapped[str] = mapped_column(String(300), unique=True)


# -- journeys and delivery (migration 0006; docs/decisions/0007-journeys.md) --------------


class Journey(Base):
    """A journey by name: its lifecycle status and the version in force."""

    __tablename__ = "journeys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    #: draft, approved, active, paused, archived
    status: Mapped[str] = mapped_column(String(20))
    #: The newest version applied (the one approve/activate act on).
    latest_version: Mapped[int] = mapped_column(Integer)
    #: The version new customers enter (None until first activated).
    active_version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class JourneyVersion(Base):
    """One applied definition of a journey (append-only; ``digest`` = sha256 of the
    canonical JSON, so applying the same file twice adds nothing)."""

    __tablename__ = "journey_versions"
    __table_args__ = (
        UniqueConstraint("journey", "version", name="uq_journey_versions_journey_version"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    journey: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(64))
    #: The validated definition as canonical JSON.
    definition: Mapped[str] = mapped_column(Text)
    #: The YAML text as applied.
    source: Mapped[str] = mapped_column(Text)
    #: Customers inside an older version move to this one on activation.
    migrate: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(200))


class JourneyApproval(Base):
    """Who approved which version of a journey, and when (activation needs one)."""

    __tablename__ = "journey_approvals"
    __table_args__ = (
        UniqueConstraint("journey", "version", name="uq_journey_approvals_journey_version"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    journey: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    approved_by: Mapped[str] = mapped_column(String(200))
    approved_at: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(Text)


class JourneyEnrolment(Base):
    """One customer inside one journey (a durable timer when ``wake_at`` is set).

    ``status``: active (due at ``wake_at``), waiting (for an event until ``wake_at``, the
    timeout), done, exited. ``arm``: treatment or control (the journey's control arm
    walks the same nodes but every action is withheld and logged as such).
    """

    __tablename__ = "journey_enrolments"
    __table_args__ = (
        UniqueConstraint(
            "journey", "user_id", "entry_key", name="uq_journey_enrolments_journey_user_entry_key"
        ),
        Index("ix_journey_enrolments_status_wake_at", "status", "wake_at"),
        Index("ix_journey_enrolments_user_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    journey: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[str] = mapped_column(String(200))
    #: The re-entry key: the order id for "once per order", a date, or "once".
    entry_key: Mapped[str] = mapped_column(String(300))
    arm: Mapped[str] = mapped_column(String(20))
    node: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))
    wake_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: For a wait-for-event node: the event type waited for (its timeout is wake_at).
    waiting_for: Mapped[str | None] = mapped_column(String(100))
    #: JSON: the trigger's event (id, type, properties), variants drawn, deferrals.
    context: Mapped[str] = mapped_column(Text)
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    exited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    exit_reason: Mapped[str | None] = mapped_column(String(100))
    #: Claimed by a worker (PostgreSQL: FOR UPDATE SKIP LOCKED also guards it).
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class JourneyStep(Base):
    """What happened at a node for one enrolment (the per-node report reads these).

    ``kind``: entered, action, sent, withheld (control arm), suppressed, held, deferred,
    branch, split, waited, timeout, converted, exited. ``reason`` names a suppression's
    guard (consent, frequency_cap, suppressed, coupon_cap, …) or a branch taken.
    """

    __tablename__ = "journey_steps"
    __table_args__ = (
        Index("ix_journey_steps_journey_node_kind", "journey", "node", "kind"),
        Index("ix_journey_steps_enrolment_id", "enrolment_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    #: Unique: a replayed step (a worker retrying after a crash) adds nothing.
    key: Mapped[str] = mapped_column(String(400), unique=True)
    enrolment_id: Mapped[int] = mapped_column(BigInteger)
    journey: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    node: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(100))
    detail: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class JourneyCursor(Base):
    """How far a trigger has read (per journey and trigger): a JSON position."""

    __tablename__ = "journey_cursors"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    position: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BanditArm(Base):
    """Thompson-sampling counts of one variant at an adaptive split."""

    __tablename__ = "journey_bandit_arms"
    __table_args__ = (
        UniqueConstraint(
            "journey", "node", "variant", name="uq_journey_bandit_arms_journey_node_variant"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    journey: Mapped[str] = mapped_column(String(100))
    node: Mapped[str] = mapped_column(String(100))
    variant: Mapped[str] = mapped_column(String(100))
    trials: Mapped[int] = mapped_column(BigInteger)
    successes: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OutboxMessage(Base):
    """One side effect to perform (a message, webhook, coupon, points, task, tag, tier).

    ``status``: pending (due at ``next_attempt_at``), held (quiet hours: due at their
    end), sending (claimed by ``claimed_by``), sent, failed (retries exhausted; the
    provider's answer in ``last_error``), unknown (in doubt after a crash on a channel
    that does not deduplicate), cancelled. ``key`` is the stable idempotency key sent
    to the provider (SMTP Message-ID, webhook-id, provider key).
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_outbox_user_id_channel", "user_id", "channel"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    journey: Mapped[str | None] = mapped_column(String(100))
    version: Mapped[int | None] = mapped_column(Integer)
    node: Mapped[str | None] = mapped_column(String(100))
    enrolment_id: Mapped[int | None] = mapped_column(BigInteger)
    user_id: Mapped[str] = mapped_column(String(200))
    #: email, sms, push, wechat, whatsapp, in_app, webhook, file, coupon, points,
    #: task, tag, tier
    channel: Mapped[str] = mapped_column(String(30))
    #: The provider that took it last (primary or fallback).
    provider: Mapped[str | None] = mapped_column(String(100))
    #: JSON: rendered subject/body/locale, or the action's arguments. No contact data.
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Why it is held or was deferred (quiet_hours, …).
    hold_reason: Mapped[str | None] = mapped_column(String(100))
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    provider_message_id: Mapped[str | None] = mapped_column(String(300))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DeliveryEvent(Base):
    """A delivery outcome (sent, delivered, bounced, opened, clicked, unsubscribed,
    failed, unknown) of an outbox row; published to the warehouse by ``event_id``."""

    __tablename__ = "delivery_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(300), unique=True)
    outbox_id: Mapped[int] = mapped_column(BigInteger, index=True)
    user_id: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(30))
    kind: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    published: Mapped[bool] = mapped_column(Boolean, default=False, index=True)


class Contact(Base):
    """A customer's address on one channel, encrypted (key derived from the workspace
    secret) with a keyed hash for lookups; never stored in clear."""

    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("user_id", "channel", name="uq_contacts_user_id_channel"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(30))
    address_encrypted: Mapped[str] = mapped_column(Text)
    address_hash: Mapped[str] = mapped_column(String(64), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ConsentRecord(Base):
    """A consent decision: purpose × channel × source × time (append-only; the latest
    per user, purpose and channel is in force). ``status``: granted, denied, revoked."""

    __tablename__ = "consents"
    __table_args__ = (
        Index("ix_consents_user_id_purpose_channel", "user_id", "purpose", "channel"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(String(50))
    channel: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(100))
    #: The consent text's version (or other proof) shown when it was given.
    proof: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Suppression(Base):
    """A global suppression: no message to this customer (or address hash) on ``channel``
    (None: every channel). ``kind``: erased, bounced, unsubscribed, complaint, manual."""

    __tablename__ = "suppressions"
    __table_args__ = (
        UniqueConstraint("subject", "channel", "kind", name="uq_suppressions_subject_channel_kind"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    #: A user id, or the keyed hash of an address.
    subject: Mapped[str] = mapped_column(String(200), index=True)
    channel: Mapped[str] = mapped_column(String(30))
    kind: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class ServiceTask(Base):
    """A customer-service task in a queue with an SLA (``status``: open, responded,
    closed, breached)."""

    __tablename__ = "service_tasks"
    __table_args__ = (Index("ix_service_tasks_status_sla_due_at", "status", "sla_due_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    user_id: Mapped[str] = mapped_column(String(200), index=True)
    account_id: Mapped[str | None] = mapped_column(String(200))
    queue: Mapped[str] = mapped_column(String(100))
    journey: Mapped[str | None] = mapped_column(String(100))
    node: Mapped[str | None] = mapped_column(String(100))
    summary: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    sla_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CustomerTag(Base):
    """A tag set on a customer by a journey or an operator."""

    __tablename__ = "customer_tags"
    __table_args__ = (UniqueConstraint("user_id", "tag", name="uq_customer_tags_user_id_tag"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(200))
    tag: Mapped[str] = mapped_column(String(100), index=True)
    value: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(200))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime)


# -- service: API keys, idempotency, the event inbox, partner webhooks, alerts, cockpit --


class ApiKey(Base):
    """An API key: the public ``key_id`` (the part before the dot of ``lc_<id>.<secret>``)
    and a keyed hash of the secret part — the key itself is shown once and never stored.
    ``scopes`` is a JSON list; ``rate_per_s`` and ``burst`` bound its requests (token
    bucket; None: the workspace default)."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key_id: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(Text)
    rate_per_s: Mapped[float | None] = mapped_column(Float)
    burst: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(200))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IdempotencyRecord(Base):
    """The stored answer to a write sent with an ``Idempotency-Key``: replayed for the
    same key and body until ``expires_at``; the same key with another body is refused."""

    __tablename__ = "idempotency_records"
    __table_args__ = (
        UniqueConstraint("key_id", "idem_key", name="uq_idempotency_records_key_id_idem_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key_id: Mapped[str] = mapped_column(String(40))
    idem_key: Mapped[str] = mapped_column(String(300))
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(400))
    body_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    response: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class InboxEvent(Base):
    """An event accepted by ``POST /v1/events``: durable here before the 202, moved into
    the warehouse by the micro-batch loader (``loaded_at`` and its ``load_id`` set)."""

    __tablename__ = "event_inbox"
    __table_args__ = (Index("ix_event_inbox_loaded_at_id", "loaded_at", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str | None] = mapped_column(String(300), unique=True)
    #: JSON: the event's fields as posted (contact fields are hashed at ingest).
    payload: Mapped[str] = mapped_column(Text)
    key_id: Mapped[str | None] = mapped_column(String(40))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    loaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    load_id: Mapped[str | None] = mapped_column(String(100))


class WebhookSubscription(Base):
    """A partner's subscription to outgoing events (``stage_changed``, ``risk_crossed``,
    ``tier_changed``, ``journey_converted``, …), delivered through the outbox, signed
    with its own secret (encrypted like contacts)."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    url: Mapped[str] = mapped_column(Text)
    secret_encrypted: Mapped[str] = mapped_column(Text)
    #: JSON list of event types.
    event_types: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: JSON: how far the subscription's events were handed to the outbox (the
    #: ``ingested_at`` of warehouse events and the ``scored_at`` of scores read).
    cursor: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(200))
    #: ``risk_crossed``: the churn risk the latest score crosses upwards (migration 0008).
    risk_threshold: Mapped[float | None] = mapped_column(Float)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Alert(Base):
    """An alert raised by a monitor: ``level`` 1 (team), 2 (owner), 3 (one-to-one
    service); ``key`` de-duplicates (one open alert per monitor and scope value);
    ``status`` open → acknowledged | snoozed (until ``snoozed_until``) → resolved."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_status_level", "status", "level"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    monitor: Mapped[str] = mapped_column(String(100))
    level: Mapped[int] = mapped_column(Integer)
    scope: Mapped[str | None] = mapped_column(String(200))
    subject: Mapped[str | None] = mapped_column(String(200))
    message: Mapped[str] = mapped_column(Text)
    value: Mapped[float | None] = mapped_column(Float)
    baseline: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(20))
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    snoozed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebUser(Base):
    """A cockpit login: ``role`` admin, analyst or operator; the password as a scrypt
    hash with its salt (``scrypt$n$r$p$salt$hash``)."""

    __tablename__ = "web_users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(20))
    language: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
