"""E-mail for the project's Prefect automations (`automations.yaml`): an SMTP notification block.
Chat goes through Prefect's own webhook blocks (`CustomWebhookNotificationBlock` with a Slack- or
Teams-shaped body, or `SlackWebhook` / `MicrosoftTeamsWebhook`).

The Prefect server sends an automation's notifications itself, so this module is registered as a
Prefect collection (pyproject's `prefect.collections` entry point): the server can load the block.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from typing import ClassVar, Literal

from prefect.blocks.abstract import NotificationBlock, NotificationError
from pydantic import Field, SecretStr


class SmtpNotification(NotificationBlock):
    _block_type_name: ClassVar[str] = "AIQ Email Notification"
    _description: ClassVar[str] = "Sends an automation's message by e-mail through an SMTP server."

    smtp_host: str = Field(description="e.g. smtp.office365.com")
    smtp_port: int = 587
    security: Literal["starttls", "ssl", "none"] = Field(
        default="starttls", description="starttls (port 587), ssl (port 465), or none (a local relay)"
    )
    username: str | None = None
    password: SecretStr | None = None
    from_address: str = Field(description="e.g. aiq-flows@finance.example.com")
    to: list[str] = Field(description="who is told, e.g. [ar-team@finance.example.com]")
    timeout_seconds: float = 30.0

    def _send(self, body: str, subject: str | None) -> None:
        message = EmailMessage()
        message["From"], message["To"] = self.from_address, ", ".join(self.to)
        message["Subject"] = subject or "aiq-flows"
        message.set_content(body)
        context = ssl.create_default_context()
        if self.security == "ssl":
            server: smtplib.SMTP = smtplib.SMTP_SSL(
                self.smtp_host, self.smtp_port, timeout=self.timeout_seconds, context=context
            )
        else:
            server = smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=self.timeout_seconds)
        with server:
            if self.security == "starttls":
                server.starttls(context=context)
            if self.username and self.password:
                server.login(self.username, self.password.get_secret_value())
            server.send_message(message)

    async def notify(self, body: str, subject: str | None = None) -> None:
        try:
            await asyncio.to_thread(self._send, body, subject)
        except (OSError, smtplib.SMTPException) as error:
            message = f"{self.smtp_host}:{self.smtp_port} refused the message: {error}"
            if self._raise_on_failure:
                raise NotificationError(log=message) from None
            self.logger.error("E-mail notification failed: %s", message)
