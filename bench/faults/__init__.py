"""The fault suite (issue #9, item 9): a real stack (Temporal dev server, worker and API
processes, PostgreSQL behind a TCP proxy), a citizen and staff load with retrying
clients, faults injected at random points, and the figures of what survived.

- `compare`: each incident's SQL timeline against its Temporal history, event by event
  (also used by tests/fault).
- `stack`: the processes, the database and the proxy that cuts it.
- `run`: the phases, each a load with a fault injected, then its measures
  (`python -m bench.fault_report`): `load` (the retrying clients), `inject` (the faults),
  `measure` (settle, compare, count) and `figures` (a phase's figures, the table).
"""
