"""The board: ``GET /`` lists the people of this host's users database."""

from django.conf import settings
from django.http import JsonResponse
from django.urls import path

from common.views import healthz_for
from people.models import Person

SERVICE = "board"


def people(request):
    names = list(Person.objects.order_by("pk").values_list("name", flat=True))
    return JsonResponse({"service": SERVICE, "release": settings.BACKSTAGE_RELEASE,
                         "people": names})


urlpatterns = [path("", people), path("healthz", healthz_for(Person))]
