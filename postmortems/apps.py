from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.autoreload import file_changed


class PostmortemsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "postmortems"
    verbose_name = "Postmortems"

    def ready(self) -> None:
        from postmortems import kept_pages

        post_migrate.connect(_keep_triggers, sender=self)
        file_changed.connect(kept_pages.forget_on_file_change)


def _keep_triggers(sender, using, apps=None, **kwargs) -> None:
    """(Re)create the database's triggers: SQLite drops a table's triggers when a migration
    rebuilds it, and a flush empties the change counter's table. `apps` is the migrated state
    (`flush` sends none: the models as they are)."""
    from django.apps import apps as current
    from django.db import connections

    from postmortems import change_counter, item_visibility

    apps = apps or current
    connection = connections[using]
    model = apps.get_model("postmortems", "ActionItem")
    fields = {field.name for field in model._meta.fields}
    if "incident_visibility" in fields:  # not when migrated back to before the column
        item_visibility.install(connection)
    try:
        apps.get_model("postmortems", "ChangeCounter")
    except LookupError:  # migrated back to before the counter
        return
    change_counter.install(connection, apps)
