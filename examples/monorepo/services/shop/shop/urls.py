"""The shop: ``/`` counts both databases; ``POST /greet name=X`` writes to both."""

import os

from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from common.views import healthz_for
from greetings.models import Greeting
from people.models import Person

SERVICE = "shop"


def home(request):
    return JsonResponse({"service": SERVICE, "release": os.environ.get("BACKSTAGE_RELEASE", "dev"),
                         "people": Person.objects.count(),
                         "greetings": Greeting.objects.count()})


@csrf_exempt  # an API for scripts and tests, not a browser form
@require_POST
def greet(request):
    name = request.POST.get("name", "").strip()[:100] or "nobody"
    Person.objects.create(name=name)
    Greeting.objects.create(text=f"Hello, {name}!")
    return JsonResponse({"greeted": name}, status=201)


urlpatterns = [path("", home), path("greet", greet),
               path("healthz", healthz_for(Person, Greeting))]
