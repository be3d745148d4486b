from django.db import models


class Show(models.Model):
    title = models.CharField(max_length=100)
    on_sale = models.BooleanField(default=True)

    class Meta:
        ordering = ["title"]
