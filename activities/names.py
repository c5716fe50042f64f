"""Activity names, shared by the workflow (which must not import the activity modules:
they load SQLAlchemy) and the classes that implement them."""

RAISE_ALERT = "raise_alert"
RESOLVE_ALERTS = "resolve_alerts"
PUBLISH_PUBLIC_ALERT = "publish_public_alert"
LOCATE_WARD = "locate_ward"
FIND_DUPLICATES = "find_duplicates"
PROJECT = "project"  # ProjectEvent: the compact state + the event (+ the report once)
REMIND_ALERT = "remind_alert"
