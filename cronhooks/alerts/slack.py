"""Alerts to a Slack incoming webhook (or anything that takes its JSON)."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from cronhooks.alerts.base import Alert, AlertBackend
from cronhooks.conf import conf

# Slack refuses a section's text above 3000 characters.
MAX_ERROR_LENGTH = 2500


def is_loopback(url: str) -> bool:
    """An http:// URL to this machine, where no one can read the secret."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def escape(text: str) -> str:
    """Text Slack shows as written: no links, mentions or `<!channel>` pings."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackAlertBackend(AlertBackend):
    """OPTIONS: ``WEBHOOK_URL``, an https URL; empty or None switches it off.

    An empty URL is not an error, so settings can read it from an environment
    variable that only production sets.
    """

    option_names = frozenset({"WEBHOOK_URL"})

    @property
    def webhook_url(self) -> str:
        value = self.options.get("WEBHOOK_URL")
        return value if isinstance(value, str) else ""

    @property
    def enabled(self) -> bool:
        return bool(self.webhook_url)

    def secrets(self) -> list[str]:
        return [self.webhook_url] if self.webhook_url else []

    def check_configuration(self) -> list[str]:
        problems = super().check_configuration()
        value = self.options.get("WEBHOOK_URL")
        if value is not None and not isinstance(value, str):
            problems.append("WEBHOOK_URL must be a string (or empty to switch off).")
        elif value and not (value.startswith("https://") or is_loopback(value)):
            # Not quoted: the URL is a secret.
            problems.append(
                "WEBHOOK_URL must be an https:// URL (http:// only to this machine, "
                "for trying alerts locally)."
            )
        return problems

    def send(self, alert: Alert) -> None:
        import requests  # on first use, as in cronhooks.alerts.delivery

        response = requests.post(
            self.webhook_url, json=self.payload(alert), timeout=conf.alert_timeout
        )
        response.raise_for_status()

    def payload(self, alert: Alert) -> dict[str, Any]:
        icon = ":white_check_mark:" if alert.kind == "recovery" else ":rotating_light:"
        if alert.admin_url.startswith(("https://", "http://")):
            run = f"<{alert.admin_url}|{alert.run_id}>"
        else:
            # A bare path is no link in Slack; show it for the reader to open.
            run = f"`{alert.run_id}`" + (
                f"\n{escape(alert.admin_url)}" if alert.admin_url else ""
            )
        fields = [
            ("Job", f"`{alert.job}`"),
            ("Environment", escape(alert.environment)),
            ("Status", alert.status_text),
            ("Duration", alert.duration),
            ("Correlation ID", f"`{escape(alert.correlation_id)}`"),
            ("Run", run),
        ]
        blocks: list[dict[str, Any]] = [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": alert.title[:150]},
            },
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": f"*{name}*\n{value}"}
                    for name, value in fields
                ],
            },
        ]
        text = f"{icon} {alert.title}"
        if alert.kind == "failure" and alert.error:
            error = escape(alert.error[:MAX_ERROR_LENGTH])
            blocks.append(
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": f"*Error*\n```{error}```"},
                }
            )
            # The notification preview shows only `text`.
            text += f": {escape(alert.error[:200])}"
        return {"text": text, "blocks": blocks}
