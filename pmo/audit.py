"""``pmo audit verify`` and ``pmo audit export``: the audit trail from the command line.

``verify`` recomputes the hash chain from the event store and prints the JSON
of ``GET /v1/audit/verify``; it exits 0 when the chain holds, 1 when it breaks.

``export --output FILE`` never writes onto a store: it refuses the event store's
and the projection store's files (and their WAL, shared-memory and lock files)
and any existing SQLite database or directory, saying why, with exit code 2. The
file is written beside its target and renamed over it at the end, so a failed
export leaves an existing file as it was.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable
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
            return 0
        why = refusal(args.output, settings)
        if why is not None:
            print(f"pmo audit export: {why}", file=sys.stderr)
            return 2
        try:
            write_atomically(args.output, chunks)
        except OSError as e:
            print(f"pmo audit export: cannot write {args.output}: {e.strerror or e}",
                  file=sys.stderr)
            return 1
        return 0
    finally:
        service.close()


SQLITE_HEADER = b"SQLite format 3\x00"
STORE_COMPANIONS = ("", "-wal", "-shm", "-journal", ".writer.lock")


def refusal(output: Path, settings: Settings) -> str | None:
    """Why the export must not be written to ``output``, or None."""
    target = output.resolve()
    for what, url in (("the event store", settings.event_store),
                      ("the projection store", settings.projection_store)):
        if url.kind != "sqlite":
            continue
        store = Path(url.path).resolve()
        if target in {Path(f"{store}{suffix}") for suffix in STORE_COMPANIONS}:
            return f"refusing to write onto {what} ({output}): choose another file"
    if target.is_dir():
        return f"{output} is a directory: give a file name"
    if not target.parent.is_dir():
        return f"the directory {output.parent} does not exist"
    if target.is_file():
        try:
            with target.open("rb") as f:
                header = f.read(len(SQLITE_HEADER))
        except OSError as e:
            return f"cannot read {output}: {e.strerror or e}"
        if header == SQLITE_HEADER:
            return f"refusing to overwrite {output}: it is a SQLite database"
    return None


def write_atomically(output: Path, chunks: Iterable[bytes]) -> None:
    """Write beside ``output``, then rename over it: a failure leaves ``output`` untouched."""
    fd, temporary = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
        # mkstemp made it private (0600): give it the mode an ordinary file would have.
        if output.exists():
            shutil.copymode(output, temporary)
        else:
            os.chmod(temporary, 0o644)
        os.replace(temporary, output)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
