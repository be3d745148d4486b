from django.conf import settings
from django.http import JsonResponse

from catalog.models import Show


def shows(request):
    if request.method == "POST":
        Show.objects.create(title=request.POST.get("title", "untitled"))
    return JsonResponse({"shows": list(Show.objects.values_list("title", flat=True)),
                         "database": str(settings.DATABASES["default"]["NAME"])})
