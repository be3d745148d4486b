import json
import logging
import os

from django.db import DatabaseError
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST, require_safe

from people.models import Person

from .models import Greeting

logger = logging.getLogger(__name__)


@require_safe
def home(request):
    """The landing page; reads both logical databases."""
    return render(
        request,
        "greetings/home.html",
        {
            "people": Person.objects.count(),
            "greetings": Greeting.objects.count(),
            "latest": Greeting.objects.order_by("-created", "-pk").first(),
            "release": os.environ.get("BACKSTAGE_RELEASE", "dev"),  # what Backstage deploys
        },
    )


@csrf_exempt  # an example API for scripts and tests, not a browser form
@require_POST
def greet(request):
    """Record a Person (users db) and a Greeting (greetings db) for a form or JSON ``name``."""
    if request.content_type == "application/json":
        try:
            payload = json.loads(request.body)
        except ValueError:
            return JsonResponse({"error": "invalid JSON"}, status=400)
        name = payload.get("name") if isinstance(payload, dict) else None
    else:
        name = request.POST.get("name")
    name = name.strip() if isinstance(name, str) else ""
    if not name or len(name) > Person._meta.get_field("name").max_length:
        return JsonResponse({"error": "name must be 1-100 characters"}, status=400)

    Person.objects.create(name=name)
    Greeting.objects.create(text=f"Hello, {name}!")
    return JsonResponse(
        {"people": Person.objects.count(), "greetings": Greeting.objects.count()}, status=201
    )


@never_cache
def healthz(request):
    """Liveness for Backstage's switch: 200 "ok" only if every logical database answers.

    ``exists()`` is a one-row query on each app's table, so it also catches a database that was
    never migrated, not just one that cannot be opened.
    """
    for model in (Person, Greeting):
        try:
            model.objects.exists()
        except DatabaseError:
            logger.exception("health check: %s database failed", model._meta.app_label)
            return HttpResponse(
                "database unavailable\n", status=500, content_type="text/plain; charset=utf-8"
            )
    return HttpResponse("ok", content_type="text/plain; charset=utf-8")
