"""The fault suite (issue #9, item 9): a real stack (Temporal dev server, worker and API
processes, PostgreSQL behind a TCP proxy), a citizen and staff load with retrying
clients, faults injected at random points, and the figures of what survived.

- `compare`: each incident's SQL timeline against its Temporal history, event by event
  (also used by tests/fault).
- `stack`: the processes, the database and the proxy that cuts it.
- `run`: the load, the faults, the measures and the table (`python -m bench.fault_report`).
"""
