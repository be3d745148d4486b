from django.urls import path

from greetings import views

urlpatterns = [
    path("", views.home, name="home"),
    path("api/greet", views.greet, name="greet"),
    path("healthz", views.healthz, name="healthz"),
]
