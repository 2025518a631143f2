"""Which events this installation offers to template and subscribe to: each app that emits an
event declares it in its AppConfig.ready() (`events_offer`), so the template and preference pages
never list the events of a capability that is not installed or not built."""

from .models import Event

_offered: set[str] = set()


def events_offer(*events: str) -> None:
    for event in events:
        _offered.add(Event(event).value)  # ValueError for an unknown event: a typo in ready()


def events_offered() -> list[Event]:
    """The offered events in Event's order."""
    return [event for event in Event if event.value in _offered]


def event_offered(event: str) -> bool:
    return event in _offered
