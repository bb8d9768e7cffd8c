"""Phone and chat delivery through Apprise: the only module that imports it.

The services and their secrets are Apprise URLs in a credentials file in Apprise's own
configuration format (YAML or text, with tags); a channel sends to the URLs carrying its
tags. Apprise sends synchronously, so each send runs in a worker thread: the event loop
never waits on a chat service.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import apprise

from monitor.delivery import text
from monitor.delivery.outbox import OutboxMessage
from monitor.delivery.worker import DeliveryError
from monitor.logs import register_url_secrets

_NOTIFY_TYPES = {
    "critical": apprise.NotifyType.FAILURE,
    "warning": apprise.NotifyType.WARNING,
    "info": apprise.NotifyType.INFO,
}


def load_services(credentials: Path) -> apprise.Apprise:
    """The Apprise URLs of a credentials file; a clear error when it has none."""
    config = apprise.AppriseConfig()
    if not credentials.is_file():
        raise FileNotFoundError(f"{credentials}: Apprise credentials file not found")
    config.add(str(credentials))
    services = apprise.Apprise()
    services.add(config)
    if len(services) == 0:
        raise ValueError(f"{credentials}: no valid Apprise URL in the file")
    register_url_secrets(str(server.url()) for server in services)  # type: ignore[no-untyped-call]
    return services


class ChatTransport:
    """Sends a message, or a group as one message, to the services tagged ``tags``."""

    def __init__(
        self, services: apprise.Apprise, tags: Sequence[str], timeout: float = 30.0
    ) -> None:
        self.services = services
        self.tags = list(tags) or "all"
        self.timeout = timeout

    async def send(self, messages: Sequence[OutboxMessage], group_id: str) -> None:
        records = [m.record for m in messages]
        severities = {str(r["severity"]) for r in records if r["state"] == "firing"}
        worst = next((s for s in ("critical", "warning", "info") if s in severities), None)
        notify_type = _NOTIFY_TYPES[worst] if worst else apprise.NotifyType.SUCCESS
        ok = await asyncio.to_thread(
            self.services.notify,
            body=text.body(records, group_id),
            title=text.title(records),
            notify_type=notify_type,
            tag=self.tags,
        )
        if not ok:
            raise DeliveryError(f"Apprise could not deliver to the services tagged {self.tags}")
