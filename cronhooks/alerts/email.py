"""Alerts by email, through the project's own ``EMAIL_BACKEND`` (or default
``MAILERS`` alias on Django 6.1+)."""

from __future__ import annotations

from django.core.mail import send_mail

from cronhooks.alerts.base import Alert, AlertBackend


class EmailAlertBackend(AlertBackend):
    """OPTIONS: ``RECIPIENTS`` (a list of addresses) and optionally
    ``FROM_EMAIL`` (default: ``DEFAULT_FROM_EMAIL``)."""

    option_names = frozenset({"RECIPIENTS", "FROM_EMAIL"})

    @property
    def recipients(self) -> list[str]:
        value = self.options.get("RECIPIENTS", [])
        if isinstance(value, str):
            return [value]
        return [address for address in value if isinstance(address, str)]

    @property
    def enabled(self) -> bool:
        return bool(self.recipients)

    def check_configuration(self) -> list[str]:
        problems = super().check_configuration()
        recipients = self.options.get("RECIPIENTS")
        if not isinstance(recipients, list | tuple) or not all(
            isinstance(address, str) and address for address in recipients
        ):
            problems.append("RECIPIENTS must be a list of email addresses.")
        from_email = self.options.get("FROM_EMAIL")
        if from_email is not None and not isinstance(from_email, str):
            problems.append("FROM_EMAIL must be a string.")
        return problems

    def send(self, alert: Alert) -> None:
        from_email = self.options.get("FROM_EMAIL")
        send_mail(
            subject=f"[{alert.environment}] {alert.title}",
            message=self.body(alert),
            from_email=from_email if isinstance(from_email, str) else None,
            recipient_list=self.recipients,
        )

    def body(self, alert: Alert) -> str:
        lines = [
            alert.title + ".",
            "",
            f"Job:            {alert.job}",
            f"Environment:    {alert.environment}",
            f"Status:         {alert.status_text}",
            f"Started:        {alert.started_at.isoformat()}",
            f"Duration:       {alert.duration}",
            f"Correlation ID: {alert.correlation_id}",
            f"Run:            {alert.admin_url or alert.run_id}",
        ]
        if alert.kind == "failure" and alert.error:
            lines += ["", "Error:", alert.error]
        return "\n".join(lines) + "\n"
