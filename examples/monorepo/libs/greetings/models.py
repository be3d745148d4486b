from django.db import models


class Greeting(models.Model):
    """A greeting handed out; lives in the ``greetings`` logical database."""

    text = models.CharField(max_length=200)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.text
