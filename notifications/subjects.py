"""What notifications may know about the thing an event is about (today a ticket): only what the
app that owns it says, through the `SubjectKind` it registers in its `AppConfig.ready()`.

Notifications is below tickets in the layers (DESIGN.md "Layers and extension points"), so it
never imports the model; `event_emit(ticket=…)` looks up the kind of the object it is given."""

from django.core.exceptions import ImproperlyConfigured

from .models import Priority

_kinds: dict[str, "SubjectKind"] = {}  # "app_label.model" → its kind


class SubjectKind:
    """How notifications reads one kind of subject. Subclass it beside the model and register an
    instance with `subject_kind_register("app_label.Model", kind)`."""

    def recipients(self, subject, *, event, actor, context):
        """(users, customers) who hear of `event` when the caller does not name them."""
        return [], []

    def variables(self, subject):
        """The message variables the subject contributes (strings). `ticket_url` is the link staff
        rows carry, `tracking_url` the one customer rows carry."""
        return {}

    def priority(self, subject):
        """The priority preferences compare with (notifications.models.Priority)."""
        return Priority.NORMAL

    def occurrence(self, subject):
        """Which happening of an event this is, when the caller does not say: the same value for
        the same change (so emitting it twice writes nothing), a new one for the next change."""
        return ""


def subject_kind_register(label: str, kind: SubjectKind) -> None:
    """Register how notifications reads instances of the model `label` ("app_label.Model")."""
    _kinds[label.lower()] = kind


def subject_kind(subject) -> SubjectKind:
    """The registered kind of `subject` (a model instance)."""
    label = subject._meta.label_lower
    try:
        return _kinds[label]
    except KeyError:
        raise ImproperlyConfigured(
            f"notifications has no SubjectKind for {label}: register one in its app's ready()") from None
