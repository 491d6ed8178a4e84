from django.db import models


class ChangeCounter(models.Model):
    """One row whose number the database raises with every write to a table a page shows
    (postmortems/change_counter.py): while it stands still, a page rendered earlier is still
    true (postmortems/kept_pages.py)."""

    ROW = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=ROW, editable=False)
    number = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = "change counter"

    def __str__(self) -> str:
        return f"{self.number:,} changes"
