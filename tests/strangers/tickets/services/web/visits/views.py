import json

from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import render

from visits.models import Visit


def home(request):
    Visit.objects.create()
    return render(request, "web/home.html", {"number": Visit.objects.count()})


def where(request):
    return HttpResponse(json.dumps({"database": str(settings.DATABASES["default"]["NAME"]),
                                    "secure": request.is_secure()}),
                        content_type="application/json")
