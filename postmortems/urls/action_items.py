from django.urls import path

from ..views import action_items

urlpatterns = [
    path("action-items/", action_items.action_item_review, name="action_item_review"),
    path(
        "action-items/export.csv",
        action_items.action_item_export_csv,
        name="action_item_export_csv",
    ),
    path(
        "incidents/<int:pk>/action-items/new/",
        action_items.action_item_create,
        name="action_item_create",
    ),
    path("action-items/<int:pk>/", action_items.action_item_detail, name="action_item_detail"),
    path(
        "action-items/<int:pk>/update/",
        action_items.action_item_update,
        name="action_item_update",
    ),
]
