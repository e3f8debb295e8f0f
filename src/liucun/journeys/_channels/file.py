"""The ``file`` channel, for dry runs: each message is one JSON line appended to a file
under the workspace (``[channels.NAME] path``, relative to the workspace, else
``<workspace>/outbox/<channel>.jsonl``).

A line holds the key, channel, customer, journey, node, instant and rendered payload —
never the address. The channel does not deduplicate: a message in doubt after a crash is
marked unknown, not written again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from liucun.core import ChannelSettings
from liucun.journeys._channels.base import OutgoingMessage, SendResult, excerpt


class FileAdapter:
    """JSON lines appended with one ``write`` each (``O_APPEND``: workers may share it)."""

    def __init__(self, name: str, settings: ChannelSettings, workspace: Path) -> None:
        self.name = name
        self.settings = settings
        self._workspace = Path(workspace)

    def path_for(self, channel: str) -> Path:
        """Where messages of ``channel`` go."""
        if self.settings.path:
            path = Path(self.settings.path)
            return path if path.is_absolute() else self._workspace / path
        return self._workspace / "outbox" / f"{channel}.jsonl"

    def send(self, message: OutgoingMessage) -> SendResult:
        path = self.path_for(message.channel)
        line = json.dumps(
            {
                "key": message.key,
                "channel": message.channel,
                "provider": self.name,
                "user_id": message.user_id,
                "journey": message.journey,
                "node": message.node,
                "at": message.now.isoformat(),
                "has_address": message.address is not None,
                "payload": message.payload,
            },
            ensure_ascii=False,
            sort_keys=True,
            default=str,
        )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, (line + "\n").encode("utf-8"))
            finally:
                os.close(fd)
        except OSError as exc:
            return SendResult("retry", answer=excerpt(f"cannot write {path}: {exc}"))
        return SendResult("ok", provider_message_id=f"{path.name}:{message.key}", answer="written")

    def close(self) -> None:
        return None
