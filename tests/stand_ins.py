"""Stand-ins for the commands a test cannot run for real: gcloud and curl
talking to Google's and Upstash's APIs, which need an account.

Each records its arguments, one JSON list per call, and answers as the real
one would for the case at hand.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# A gcloud whose `scheduler jobs describe ID` succeeds only for the IDs in
# $EXISTING_JOBS; every other call succeeds.
GCLOUD = """\
import json, os, sys
with open(os.environ["STAND_IN_LOG"], "a") as log:
    log.write(json.dumps(["gcloud", *sys.argv[1:]]) + "\\n")
if sys.argv[1:4] == ["scheduler", "jobs", "describe"]:
    sys.exit(0 if sys.argv[4] in os.environ.get("EXISTING_JOBS", "").split() else 1)
"""
# A curl that answers as QStash does when a schedule is created.
CURL = """\
import json, os, sys
with open(os.environ["STAND_IN_LOG"], "a") as log:
    log.write(json.dumps(["curl", *sys.argv[1:]]) + "\\n")
print('{"scheduleId": "scd_1"}')
"""


class StandIns:
    """A directory of stand-in commands to put first on PATH."""

    def __init__(self, directory: Path) -> None:
        self.bin = directory / "bin"
        self.bin.mkdir()
        self.log = directory / "calls.jsonl"

    def add(self, name: str, source: str) -> None:
        path = self.bin / name
        path.write_text(f"#!{sys.executable}\n{source}")
        path.chmod(0o755)

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]
