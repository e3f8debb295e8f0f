"""Operational state: SQLAlchemy 2 models and Alembic migrations, SQLite or PostgreSQL.

The warehouse holds analytical tables (bulk loads, read-mostly); state holds the rows
that many processes write at once (exposures, the audit log, secrets' metadata, the
loyalty ledger, and in later issues journeys, the outbox and consent). See docs/decisions/0005.
"""

from liucun.state._audit import current_actor, record_audit
from liucun.state._exposures import (
    EXPOSURE_COLUMNS,
    count_exposures,
    exposures_after,
    insert_exposures,
    max_exposure_id,
)
from liucun.state._migrate import (
    StateStatus,
    current_revision,
    head_revision,
    state_status,
    upgrade,
)
from liucun.state._models import (
    AuditEntry,
    Base,
    BenefitGrant,
    CouponCode,
    CouponRedemption,
    Exposure,
    LoyaltyAccount,
    LoyaltyAccrualRun,
    LoyaltyEntry,
    LoyaltyLot,
    LoyaltyMembership,
    LoyaltyMembershipEvent,
    LoyaltyMemberTier,
    LoyaltyNotice,
    LoyaltyProgramPolicy,
    LoyaltyProgramVersion,
    LoyaltyReferral,
    LoyaltyReferralCode,
    LoyaltyTierChange,
    LoyaltyTransaction,
    UTCDateTime,
    WorkspaceSecret,
)
from liucun.state._store import (
    BUSY_TIMEOUT_MS,
    STATE_FILE,
    StateStore,
    connect_state,
    state_url_for,
)

__all__ = [
    "BUSY_TIMEOUT_MS",
    "EXPOSURE_COLUMNS",
    "STATE_FILE",
    "AuditEntry",
    "Base",
    "BenefitGrant",
    "CouponCode",
    "CouponRedemption",
    "Exposure",
    "LoyaltyAccount",
    "LoyaltyAccrualRun",
    "LoyaltyEntry",
    "LoyaltyLot",
    "LoyaltyMemberTier",
    "LoyaltyMembership",
    "LoyaltyMembershipEvent",
    "LoyaltyNotice",
    "LoyaltyProgramPolicy",
    "LoyaltyProgramVersion",
    "LoyaltyReferral",
    "LoyaltyReferralCode",
    "LoyaltyTierChange",
    "LoyaltyTransaction",
    "StateStatus",
    "StateStore",
    "UTCDateTime",
    "WorkspaceSecret",
    "connect_state",
    "count_exposures",
    "current_actor",
    "current_revision",
    "exposures_after",
    "head_revision",
    "insert_exposures",
    "max_exposure_id",
    "record_audit",
    "state_status",
    "state_url_for",
    "upgrade",
]
