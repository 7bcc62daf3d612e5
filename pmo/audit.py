"""``pmo audit verify`` and ``pmo audit export``: the audit trail from the command line.

``verify`` recomputes the hash chain from the event store and prints the JSON
of ``GET /v1/audit/verify``; it exits 0 when the chain holds, 1 when it breaks.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

from pmo.bootstrap import build_application
from pmo.settings import Settings
from projections.audit_read import AuditFilter, export_csv, export_jsonl, verify
from projections.service import build_projections


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("verify", help="recompute the hash chain from the event store")
    export = actions.add_parser("export", help="write the trail as CSV or JSON lines")
    export.add_argument("--format", choices=("csv", "jsonl"), default="jsonl")
    export.add_argument("--output", type=Path, help="file to write (default: stdout)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    service = build_projections(settings)
    try:
        if args.action == "verify":
            result = verify(service.db, build_application(settings))
            print(orjson.dumps(result).decode())
            return 0 if result["ok"] else 1
        chunks = (export_csv if args.format == "csv" else export_jsonl)(service.db,
                                                                        AuditFilter())
        if args.output is None:
            for chunk in chunks:
                sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
        else:
            with args.output.open("wb") as out:
                for chunk in chunks:
                    out.write(chunk)
        return 0
    finally:
        service.close()
