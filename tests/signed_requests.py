"""A process that sends one signed request through the real views.

Run as ``python -m tests.signed_requests PATH HEADERS_JSON``; prints the
answer's status and error message as one JSON line. The parent passes its
test databases and CRONHOOKS overrides in the environment (see
tests/workers.py), and a barrier directory so that every process sends at
the same instant.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main(path: str, headers: dict[str, str]) -> None:
    import django

    django.setup()
    from django.test import Client

    barrier = Path(os.environ["CRONHOOKS_WORKER_BARRIER"])
    (barrier / f"ready-{os.getpid()}").touch()
    while not (barrier / "go").exists():
        time.sleep(0.005)
    # An empty body, as signed (the test client sends a multipart one by default).
    response = Client().post(
        path, data=b"", content_type="application/json", headers=headers
    )
    body = response.json()
    line = {
        "status": response.status_code,
        "message": body.get("error", {}).get("message"),
    }
    print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], json.loads(sys.argv[2]))
