"""liucun (留存): a retention engine for e-commerce.

>>> import liucun
>>> ws = liucun.open("liucun-data")          # doctest: +SKIP
>>> ws.events().count()                      # doctest: +SKIP
"""

from liucun.core import LiucunError
from liucun.workspace import Workspace, init_workspace
from liucun.workspace import open_workspace as open

__version__ = "0.1.0"

__all__ = ["LiucunError", "Workspace", "__version__", "init_workspace", "open"]
