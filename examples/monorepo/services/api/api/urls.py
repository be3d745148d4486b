"""The API: ``GET /greetings`` lists greetings; ``POST /greetings text=X`` adds one."""

import os

from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from common.views import healthz_for
from greetings.models import Greeting

SERVICE = "api"


@csrf_exempt  # an API for scripts and tests, not a browser form
def greetings(request):
    if request.method == "POST":
        Greeting.objects.create(text=request.POST.get("text", "")[:200])
    texts = list(Greeting.objects.order_by("pk").values_list("text", flat=True))
    return JsonResponse({"service": SERVICE, "release": os.environ.get("BACKSTAGE_RELEASE", "dev"),
                         "greetings": texts})


urlpatterns = [path("greetings", greetings), path("healthz", healthz_for(Greeting))]
