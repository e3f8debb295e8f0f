"""The workspace: settings, warehouse, state, clock, secret key and model registry.

``liucun.open(path)`` returns a :class:`Workspace`; ``liucun init`` makes one.
"""

from liucun.workspace._secrets import SECRET_ENV, SECRET_FILE
from liucun.workspace._sync import SyncResult, sync
from liucun.workspace._workspace import Workspace, init_workspace, open_workspace

__all__ = [
    "SECRET_ENV",
    "SECRET_FILE",
    "SyncResult",
    "Workspace",
    "init_workspace",
    "open_workspace",
    "sync",
]
