"""Upstash QStash: a shell script of schedule creation requests.

Each request names its schedule (``Upstash-Schedule-Id``), so running the
script again updates the schedules instead of adding copies. QStash signs
every call it makes (``Upstash-Signature``), which cronhooks verifies with its
QStash authenticator: no cronhooks token is stored at Upstash. The QStash
token comes from the environment.

A job's parameters travel as a JSON body, not a query string: QStash reads
the query of its own request URL, which the destination is part of, as its
own options. cronhooks takes either form (the README's parameters).
"""

from __future__ import annotations

import json
import shlex

from cronhooks.schedules.cloud_scheduler import job_id
from cronhooks.schedules.export import Call, Schedule, ScheduleFormat, comment_lines

API = "https://qstash.upstash.io/v2/schedules/"


def body(call: Call) -> str:
    """The job's parameter defaults as the JSON object cronhooks reads."""
    return json.dumps(dict(call.params), separators=(",", ":"))


class QStash(ScheduleFormat):
    name = "qstash"

    def render(self, schedule: Schedule) -> str:
        header = "\n".join(comment_lines(schedule))
        requests = []
        for call in schedule.calls:
            lines = [
                "curl --fail-with-body --silent --show-error -w '\\n' -X POST",
                '-H "Authorization: Bearer $QSTASH_TOKEN"',
                f"-H {shlex.quote('Upstash-Cron: ' + call.cron)}",
                "-H "
                + shlex.quote(
                    "Upstash-Schedule-Id: " + job_id(schedule.environment, call.job)
                ),
                "-H 'Upstash-Method: POST'",
                # A retried 500 would run a failed job again: retry inside
                # cronhooks instead (a job's retries).
                "-H 'Upstash-Retries: 0'",
            ]
            if call.params:
                lines += [
                    "-H 'Content-Type: application/json'",
                    f"--data {shlex.quote(body(call))}",
                ]
            lines.append(shlex.quote(API + schedule.base_url + call.route))
            requests.append(" \\\n  ".join(lines))
        body_text = "\n\n".join(requests)
        return f"""#!/bin/sh
{header}
#
# Run it with QSTASH_TOKEN set (the Upstash console's QStash token). QStash
# reads the crons in UTC. Schedules of jobs removed from the registry stay:
# delete them in the console or with DELETE {API}<id>.
set -eu
: "${{QSTASH_TOKEN:?set QSTASH_TOKEN to your QStash token}}"

{body_text}
"""
