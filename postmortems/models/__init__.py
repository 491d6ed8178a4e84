"""The domain vocabulary (DESIGN.md section 2), one module per concern."""

from .action_items import ActionItem, ActionItemChange
from .change_counter import ChangeCounter
from .deliveries import Delivery
from .incidents import Incident, IncidentChange, Participant, Service
from .timeline import ReviewQuestion, TimelineEntry, TimelineEntryRevision
from .writeups import (
    ContributingFactor,
    Postmortem,
    PostmortemRevision,
    PostmortemTransition,
    ReviewMeeting,
)

__all__ = [
    "ActionItem",
    "ActionItemChange",
    "ChangeCounter",
    "ContributingFactor",
    "Delivery",
    "Incident",
    "IncidentChange",
    "Participant",
    "Postmortem",
    "PostmortemRevision",
    "PostmortemTransition",
    "ReviewMeeting",
    "ReviewQuestion",
    "Service",
    "TimelineEntry",
    "TimelineEntryRevision",
]
