"""A real SMTP server on localhost (aiosmtpd) that keeps what it receives: the test notifier's inbox."""

from __future__ import annotations

import email
from dataclasses import dataclass, field
from email.message import Message

from aiosmtpd.controller import Controller

from tests.support.servers import free_port


@dataclass
class Inbox:
    messages: list[Message] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    @property
    def subjects(self) -> list[str]:
        return [str(m["Subject"]) for m in self.messages]


class SmtpServer:
    """Start/stop at will on a fixed port, so a test can take the mail server down and bring it back."""

    def __init__(self) -> None:
        self.port = free_port()
        self.inbox = Inbox()
        self._controller: Controller | None = None

    def start(self) -> SmtpServer:
        if self._controller is not None:  # already up
            return self
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def conn_uri(self, login: str = "", password: str = "") -> str:
        auth = f"{login}:{password}@" if login else ""
        return (f"smtp://{auth}127.0.0.1:{self.port}?disable_ssl=true&disable_tls=true&retry_limit=0&timeout=5"
                "&from_email=steward%40steward.example")
