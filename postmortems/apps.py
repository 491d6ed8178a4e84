from django.apps import AppConfig
from django.db.models.signals import post_migrate


class PostmortemsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "postmortems"
    verbose_name = "Postmortems"

    def ready(self) -> None:
        post_migrate.connect(_keep_item_visibility, sender=self)


def _keep_item_visibility(sender, using, apps=None, **kwargs) -> None:
    """(Re)create the triggers keeping ActionItem.incident_visibility: SQLite drops a table's
    triggers when a migration rebuilds it (item_visibility.py). `apps` is the migrated state
    (`flush` sends none: the models as they are)."""
    from django.apps import apps as current
    from django.db import connections

    from postmortems import item_visibility

    model = (apps or current).get_model("postmortems", "ActionItem")
    fields = {field.name for field in model._meta.fields}
    if "incident_visibility" in fields:  # not when migrated back to before the column
        item_visibility.install(connections[using])
