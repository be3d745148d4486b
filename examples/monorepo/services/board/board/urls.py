"""The board: ``GET /`` lists the people of this host's users database."""

import os

from django.http import JsonResponse
from django.urls import path

from common.views import healthz_for
from people.models import Person

SERVICE = "board"


def people(request):
    names = list(Person.objects.order_by("pk").values_list("name", flat=True))
    return JsonResponse({"service": SERVICE, "release": os.environ.get("BACKSTAGE_RELEASE", "dev"),
                         "people": names})


urlpatterns = [path("", people), path("healthz", healthz_for(Person))]
