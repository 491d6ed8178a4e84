from django.urls import path

from ..views import timeline

urlpatterns = [
    path("incidents/<int:pk>/my-account/", timeline.my_account, name="my_account"),
    path(
        "incidents/<int:pk>/my-account/share-all/",
        timeline.account_share_all,
        name="account_share_all",
    ),
    path("entries/<int:pk>/", timeline.entry_detail, name="entry_detail"),
    path("entries/<int:pk>/edit/", timeline.entry_edit, name="entry_edit"),
    path("entries/<int:pk>/delete/", timeline.entry_delete, name="entry_delete"),
    path("entries/<int:pk>/share/", timeline.entry_share, name="entry_share"),
    path("entries/<int:pk>/annotate/", timeline.entry_annotate, name="entry_annotate"),
    path("entries/<int:pk>/questions/", timeline.entry_question_add, name="entry_question_add"),
    path("language-check/", timeline.language_check, name="language_check"),
]
