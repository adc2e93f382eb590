"""Vercel Cron: ``GET`` with ``Authorization: Bearer <CRON_SECRET>``.

Vercel calls each cron path with GET and no way to choose the method, so
this authenticator is the opt-in to trigger jobs with GET: a caller it
accepts may use GET or POST; every other caller is still answered 405 for
GET.
"""

from __future__ import annotations

from cronhooks.authenticators.bearer import SecretBearerAuthenticator


class VercelCronAuthenticator(SecretBearerAuthenticator):
    """``OPTIONS``: ``SECRETS``, the project's ``CRON_SECRET`` (a list, so a
    new secret can be added before the old one is removed)."""

    credential = "'Authorization: Bearer <CRON_SECRET>' header"
    allows_get_triggers = True
    # Vercel's documentation asks for at least 16 random characters.
    min_secret_length = 16
