"""Fixtures for the fault tests: the API stack of tests/api/conftest.py (the app on the test
database, a worker on the session's Temporal dev server, the staff users), offered to every
test here by name instead of imported into each module."""

from tests.api.conftest import (  # noqa: F401 - pytest finds the fixtures by their names
    api_settings,
    make_stack,
    people,
    worker_db,
)
