"""The baselines: what a user would write instead of cronhooks.

``naive`` is the seed's view (a bearer check, then ``call_command``);
``naive_record`` adds the one INSERT and one UPDATE of a run row that any
history needs, on cronhooks' own table so that its indexes are paid alike.
"""

from __future__ import annotations

import hmac
import uuid

from django.conf import settings
from django.core.management import call_command
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from cronhooks.models import JobRun


def bare(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"ok": True})


def authorized(request: HttpRequest) -> bool:
    expected = f"Bearer {settings.TOKEN}".encode()
    given = request.headers.get("Authorization", "").encode()
    return hmac.compare_digest(given, expected)


@csrf_exempt
def naive(request: HttpRequest) -> HttpResponse:
    if request.method != "POST" or not authorized(request):
        return JsonResponse({"error": "forbidden"}, status=403)
    call_command("bench_noop")
    return JsonResponse({"status": "succeeded"})


@csrf_exempt
def naive_record(request: HttpRequest) -> HttpResponse:
    if request.method != "POST" or not authorized(request):
        return JsonResponse({"error": "forbidden"}, status=403)
    run = JobRun.objects.create(
        job="naive",
        status=JobRun.Status.RUNNING,
        source=JobRun.Source.HTTP,
        correlation_id=uuid.uuid4().hex,
        started_at=timezone.now(),
    )
    call_command("bench_noop")
    run.status = JobRun.Status.SUCCEEDED
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "finished_at"])
    return JsonResponse({"status": "succeeded", "run_id": str(run.id)})
