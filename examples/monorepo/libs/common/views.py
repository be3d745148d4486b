"""Views the services share: a health check over the models a service uses."""

import logging

from django.db import DatabaseError
from django.http import HttpResponse
from django.views.decorators.cache import never_cache

logger = logging.getLogger(__name__)


def healthz_for(*models):
    """A view answering 200 "ok" only if each model's table answers (migrated, reachable)."""

    @never_cache
    def healthz(request):
        for model in models:
            try:
                model.objects.exists()
            except DatabaseError:
                logger.exception("health check: %s failed", model._meta.label)
                return HttpResponse("database unavailable\n", status=500)
        return HttpResponse("ok")

    return healthz
