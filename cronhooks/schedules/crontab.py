"""A crontab: one line per job, each a curl POST.

The token is read when the line runs, from ``$CRONHOOKS_TOKEN`` or else the
file ``~/.cronhooks-token``, and handed to curl on its standard input
(``-H @-``) by the shell's own printf: it is never in the crontab, nor in any
process's arguments, where other users of the machine could read it. No
flock: cronhooks keeps a job to one run at a time itself, across machines, so
the same crontab may run on two hosts. The Idempotency-Key names the minute,
so two hosts firing the same tick run the job once.

Success is quiet; a failure prints curl's error and cronhooks' JSON answer,
which cron mails to the crontab's owner. In a crontab, ``%`` ends the command
(crontab(5)), so every one in a line is escaped.
"""

from __future__ import annotations

import shlex

from cronhooks.schedules.export import (
    TIME_ZONE,
    Call,
    Schedule,
    ScheduleFormat,
    comment_lines,
)

# Shell that reads the token when the line runs; not a secret.
TOKEN = '"${CRONHOOKS_TOKEN:-$(cat "$HOME/.cronhooks-token")}"'  # noqa: S105
CURL = (
    "curl --fail-with-body --silent --show-error --retry 3 --retry-connrefused "
    "--retry-max-time 300"
)


def command(call: Call) -> str:
    """The shell command of ``call``, before crontab's escaping."""
    return (
        f"out=$(printf 'Authorization: Bearer %s\\n' {TOKEN} | {CURL} -X POST "
        '-H @- -H "Idempotency-Key: crontab-$(date -u +%Y%m%dT%H%MZ)" '
        f"{shlex.quote(call.url)}) || {{ rc=$?; printf '%s\\n' \"$out\" >&2; "
        "exit $rc; }"
    )


def line(call: Call) -> str:
    return f"{call.cron} {command(call).replace('%', chr(92) + '%')}"


class Crontab(ScheduleFormat):
    name = "crontab"

    def render(self, schedule: Schedule) -> str:
        header = "\n".join(comment_lines(schedule))
        lines = "\n".join(line(call) for call in schedule.calls)
        return f"""{header}
#
# Install it with `crontab FILE` (which replaces the user's crontab) or add
# its lines to one. Put one of CRONHOOKS["TOKENS"] in ~/.cronhooks-token
# (chmod 600), or set CRONHOOKS_TOKEN in cron's environment. Needs curl 7.76
# or later. CRON_TZ is honoured by cronie (Fedora, RHEL, Arch); Debian's and
# Ubuntu's cron ignores it and reads the lines in the system's time zone,
# which must then be UTC.
SHELL=/bin/sh
CRON_TZ={TIME_ZONE}
{lines}
"""
