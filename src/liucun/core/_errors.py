"""The one error tree of liucun.

Every error a user can act on derives from :class:`LiucunError`; each subclass also
inherits the builtin exception it refines, so ``except ValueError`` keeps working::

    LiucunError
    ├── ConfigError        (ValueError)      a setting or option is wrong
    ├── WorkspaceError     (OSError)         the workspace is missing or unusable
    ├── InvalidInput       (ValueError)      a whole input cannot be read (file, column)
    ├── WarehouseError     (RuntimeError)    the warehouse refused an operation
    │   └── WarehouseBusy  (TimeoutError)    another process held the warehouse too long
    ├── StateError         (RuntimeError)    the state database refused an operation
    ├── NotFound           (LookupError)     the thing asked for (a customer, …) does not exist
    ├── NothingLoaded      (ValueError)      a load accepted no row of an input
    ├── RejectRateExceeded (ValueError)      an ingest rejected more rows than allowed
    └── NotFittedError     (ValueError, AttributeError)  a model was used before fit

An error may carry a :class:`Hint`: the option to change and how, named by its library
parameter (``option="currency"``). The CLI turns it into a flag (``--currency``), the
API into a field path; the message itself never names a flag.

Bad *rows* are not errors: they go to the quarantine and the load goes on.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Hint:
    """What the caller can change to fix an error.

    ``option`` is the library parameter or setting (``"currency"``, ``"horizon_days"``,
    ``"ingest.currency"``); ``example`` a value that would work; ``setting`` the
    ``liucun.toml`` key that sets it for the workspace, when there is one.
    """

    option: str
    example: str | None = None
    setting: str | None = None


class LiucunError(Exception):
    """Root of every error liucun raises on purpose; ``hint`` says what to change."""

    def __init__(self, *args: object, hint: Hint | None = None) -> None:
        super().__init__(*args)
        self.hint = hint


class ConfigError(LiucunError, ValueError):
    """A setting, option or mapping is invalid; the message says which and how to fix it."""


class WorkspaceError(LiucunError, OSError):
    """The workspace directory does not exist, is not a liucun workspace, or is unusable."""


class InvalidInput(LiucunError, ValueError):
    """An input as a whole cannot be used (unreadable file, missing required column)."""


class WarehouseError(LiucunError, RuntimeError):
    """The warehouse could not complete an operation; nothing was changed."""


class WarehouseBusy(WarehouseError, TimeoutError):
    """Another process held the warehouse longer than the wait allowed."""


class StateError(LiucunError, RuntimeError):
    """The state database could not complete an operation; the transaction was rolled back."""


class NotFound(LiucunError, LookupError):
    """What was asked for (a customer, a key, a task) does not exist; the message says
    where it was looked for. The API answers 404."""


class NothingLoaded(LiucunError, ValueError):
    """A load accepted no row of at least one input; the message names the main reason."""


class RejectRateExceeded(LiucunError, ValueError):
    """The share of quarantined rows is above the configured maximum."""


class NotFittedError(LiucunError, ValueError, AttributeError):
    """A model was asked to predict or summarize before :meth:`fit` (scikit-learn's contract)."""
