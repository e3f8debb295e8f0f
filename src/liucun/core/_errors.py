"""The one error tree of liucun.

Every error a user can act on derives from :class:`LiucunError`; each subclass also
inherits the builtin exception it refines, so ``except ValueError`` keeps working::

    LiucunError
    ├── ConfigError        (ValueError)      a setting or option is wrong
    ├── WorkspaceError     (OSError)         the workspace is missing or unusable
    ├── InvalidInput       (ValueError)      a whole input cannot be read (file, column)
    ├── WarehouseError     (RuntimeError)    the warehouse refused an operation
    └── RejectRateExceeded (ValueError)      an ingest rejected more rows than allowed

Bad *rows* are not errors: they go to the quarantine and the load goes on.
"""

from __future__ import annotations


class LiucunError(Exception):
    """Root of every error liucun raises on purpose."""


class ConfigError(LiucunError, ValueError):
    """A setting, option or mapping is invalid; the message says which and how to fix it."""


class WorkspaceError(LiucunError, OSError):
    """The workspace directory does not exist, is not a liucun workspace, or is unusable."""


class InvalidInput(LiucunError, ValueError):
    """An input as a whole cannot be used (unreadable file, missing required column)."""


class WarehouseError(LiucunError, RuntimeError):
    """The warehouse could not complete an operation; nothing was changed."""


class RejectRateExceeded(LiucunError, ValueError):
    """The share of quarantined rows is above the configured maximum."""
