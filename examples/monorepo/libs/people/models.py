from django.db import models


class Person(models.Model):
    """Someone who asked to be greeted; lives in the ``users`` logical database."""

    name = models.CharField(max_length=100)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.name
