"""The workspace secret: the key of every keyed hash, kept outside the warehouse.

Created at ``init`` as ``secret.key`` (64 hex digits, file mode 0600) or taken from
``LIUCUN_SECRET_KEY``. State records its fingerprint (never the key) so a wrong key is
refused before it hashes anything; rotation adds a new version.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from sqlalchemy import select

from liucun.core import Clock, WorkspaceError
from liucun.core._hashing import key_fingerprint
from liucun.state import StateStore, WorkspaceSecret

SECRET_FILE = "secret.key"
SECRET_ENV = "LIUCUN_SECRET_KEY"
HASH_KEY = "hash_key"


def read_key(workspace: Path, *, create: bool) -> tuple[bytes, str]:
    """The key and where it came from (``'env'`` or ``'file'``); create the file if asked."""
    from_env = os.environ.get(SECRET_ENV)
    if from_env:
        return _decode(from_env.strip(), SECRET_ENV), "env"
    path = workspace / SECRET_FILE
    if not path.exists():
        if not create:
            raise WorkspaceError(
                f"{workspace} has no secret key ({SECRET_FILE}); set {SECRET_ENV} to the key "
                "this workspace was created with, or restore the file from a backup"
            )
        _write_new_key(path)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise WorkspaceError(
            f"{path} can be read by other users (mode {mode:o}); run `chmod 600 {path}`"
        )
    return _decode(path.read_text(encoding="ascii").strip(), str(path)), "file"


def _write_new_key(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(secrets.token_hex(32) + "\n")


def _decode(text: str, where: str) -> bytes:
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < 16:
        raise WorkspaceError(
            f"the secret key in {where} is not at least 32 hex digits; generate one with "
            "`python -c 'import secrets; print(secrets.token_hex(32))'`"
        )
    return key


def check_key(store: StateStore, key: bytes, source: str, clock: Clock) -> None:
    """Record the key's fingerprint on first use; refuse a key that does not match it."""
    fingerprint = key_fingerprint(key)
    with store.write() as session:
        current = session.scalar(
            select(WorkspaceSecret)
            .where(WorkspaceSecret.name == HASH_KEY, WorkspaceSecret.retired_at.is_(None))
            .order_by(WorkspaceSecret.version.desc())
        )
        if current is None:
            session.add(
                WorkspaceSecret(
                    name=HASH_KEY,
                    version=1,
                    fingerprint=fingerprint,
                    source=source,
                    created_at=clock.now(),
                )
            )
        elif current.fingerprint != fingerprint:
            where = SECRET_ENV if source == "env" else SECRET_FILE
            raise WorkspaceError(
                f"the secret key from {where} is not the one this workspace's hashes were "
                f"made with (version {current.version}); restore the original key"
            )
