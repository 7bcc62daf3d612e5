"""``pmo audit verify|export|anchor|snapshot``: the audit trail from the command line.

``verify`` recomputes the hash chain from the event store and prints the JSON
of ``GET /v1/audit/verify`` (with ``--anchor`` and/or ``--snapshot``: those
checks instead); it exits 0 when everything holds, 1 when something breaks, 2
on bad input. Progress goes to stderr, only when stderr is a terminal.

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
import stat
import sys
import tempfile
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psycopg
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from ingest.limits import EARLIEST, LATEST
from pmo.bootstrap import build_application
from pmo.settings import Settings
from projections import anchors, snapshot
from projections.audit_read import AuditFilter, export_csv, export_jsonl, verify
from projections.chain import Progress
from projections.service import build_projections

KEY_NAME = "audit-anchor-key.pem"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = actions.add_parser("verify", help="recompute the hash chain from the event store")
    check.add_argument("--anchor", type=Path, help="prove the store matches this anchor")
    check.add_argument("--snapshot", type=Path, help="check this evidence snapshot")
    export = actions.add_parser("export", help="write the trail as CSV or JSON lines")
    export.add_argument("--format", choices=("csv", "jsonl"), default="jsonl")
    export.add_argument("--output", type=Path, help="file to write (default: stdout)")
    anchor = actions.add_parser("anchor", help="write a signed checkpoint of the chain's head")
    anchor.add_argument("--key", type=Path, help="Ed25519 private key (PEM); default: "
                        f"PMO_DATA_DIR/{KEY_NAME}, created with mode 0600 if absent")
    anchor.add_argument("--output", type=Path, help="file to write (default: stdout)")
    snap = actions.add_parser("snapshot", help="write every view and the trail as of T")
    snap.add_argument("--as-of", required=True, type=datetime.fromisoformat, metavar="TIME",
                      help="recording time, ISO 8601 with a UTC offset")
    snap.add_argument("--output", required=True, type=Path, help="SQLite file to write")


def progress_bar(label: str) -> tuple[Progress | None, Any]:
    """A progress callback drawing on stderr when it is a terminal (else None), and its end."""
    if not sys.stderr.isatty():
        return None, lambda: None
    began = time.perf_counter()

    def show(position: int, last: int) -> None:
        done = min(position / last, 1.0) if last else 1.0
        rate = position / max(time.perf_counter() - began, 1e-9)
        sys.stderr.write(f"\r{label} [{'#' * int(done * 40):.<40}] {done:6.1%} "
                         f"{position}/{last} {rate:,.0f} events/s")
        sys.stderr.flush()

    return show, lambda: sys.stderr.write("\n")


def _emit(result: dict[str, Any], output: Path | None = None) -> None:
    data = orjson.dumps(result, option=orjson.OPT_INDENT_2 if output else 0)
    if output is None:
        print(data.decode())
    else:
        write_atomically(output, [data, b"\n"])


def _load_anchor(path: Path) -> anchors.Checkpoint:
    return anchors.Checkpoint.from_json(orjson.loads(path.read_bytes()))


def _key(path: Path | None, settings: Settings) -> Ed25519PrivateKey:
    path = path or settings.data_dir / KEY_NAME
    if path.exists():
        return _existing_key(path)
    key = Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    print(f"pmo audit anchor: created the signing key {path} (mode 0600); keep a copy of "
          "its public key and every anchor off this machine (docs/audit.md)", file=sys.stderr)
    return key


def _existing_key(path: Path) -> Ed25519PrivateKey:
    """The signing key in ``path``, refused with the reason when it cannot sign anchors.

    A key other users may read lets them sign anchors in this store's name, so, as ssh
    does with a private key, one with any group or other permission is refused."""
    if not path.is_file():
        raise ValueError(f"{path} is not a key file (a directory or a device)")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ValueError(f"{path} is open to other users (mode {mode:04o}): anyone who can "
                         f"read it can sign anchors; run chmod 600 {path}")
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except TypeError:  # what cryptography raises for a key that needs a password
        raise ValueError(f"{path} is encrypted: give an unencrypted Ed25519 key in PEM, "
                         "protected by its file mode (0600)") from None
    except UnsupportedAlgorithm as e:
        raise ValueError(f"{path} is not an Ed25519 private key: {e}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        return _run(args, settings)
    except (ValueError, OSError, psycopg.Error) as e:
        print(f"pmo audit {args.action}: {e}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, settings: Settings) -> int:
    # Every action reads the event store; opening a missing one would create it, empty,
    # and verify would answer ok about a store that was never there (a mistyped
    # PMO_DATA_DIR). So a missing store is an error, and nothing is created.
    if not settings.event_store.exists():
        where = settings.event_store.path or f"schema {settings.event_store.schema!r}"
        raise ValueError(f"no event store at {where}: check PMO_DATA_DIR or "
                         "PMO_EVENT_STORE_URL")
    if args.action == "anchor":
        why = None if args.output is None else refusal(args.output, settings)
        if why is not None:  # the same guard as export: never onto a store
            print(f"pmo audit anchor: {why}", file=sys.stderr)
            return 2
        key = _key(args.key, settings)  # before the long pass: a bad key fails fast
        show, end = progress_bar("anchor")
        position, head_hash, _ = anchors.store_head(build_application(settings), None, show)
        end()
        _emit(anchors.sign(key, position, head_hash).as_json(), args.output)
        return 0
    if args.action == "snapshot":
        if args.as_of.utcoffset() is None:
            raise ValueError("--as-of needs a UTC offset, e.g. 2026-03-01T00:00:00Z")
        if not EARLIEST <= args.as_of <= LATEST:  # compared before any conversion to UTC
            raise ValueError(f"--as-of must lie between {EARLIEST.isoformat()} and "
                             f"{LATEST.isoformat()}")
        if args.output.exists() or args.output.is_symlink():
            raise ValueError(f"{args.output} exists: choose a new file")
        if not args.output.parent.is_dir():
            raise ValueError(f"the directory {args.output.parent} does not exist")
        settle(args.as_of)
        manifest = snapshot.write(build_application(settings), args.as_of, args.output)
        _emit(manifest)
        if not manifest["events"]:
            # A newcomer's `--as-of 2026-06-30` on a store loaded today (the demo) is
            # empty: say why rather than hand over an empty file that verifies ok.
            print(f"pmo audit snapshot: no event was recorded at or before "
                  f"{args.as_of.isoformat()}, so the snapshot is empty; --as-of is recording "
                  "time (when the service stored each event), not the events' own time",
                  file=sys.stderr)
        return 0
    if args.action == "verify":
        return _verify(args, settings)
    service = build_projections(settings)
    try:
        chunks = (export_csv if args.format == "csv" else export_jsonl)(service.db,
                                                                        AuditFilter())
        if args.output is None:
            try:
                for chunk in chunks:
                    sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
            except BrokenPipeError:
                # The reader stopped early (`pmo audit export | head`): it has what it
                # wanted, so stay quiet as a Unix filter does. Stdout now points at
                # /dev/null, or Python's flush at exit would report the pipe again.
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
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
    """Write beside ``output``, then rename over it: a failure leaves ``output`` untouched.

    A symbolic link is followed (its target is replaced, the link stays), and a target
    that is not a regular file (``/dev/stdout``, a FIFO) is written into, never replaced:
    renaming over it would swap a device for a file."""
    target = output.resolve()
    if target.exists() and not target.is_file():
        with target.open("wb") as out:
            for chunk in chunks:
                out.write(chunk)
        return
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
        # mkstemp made it private (0600): give it the mode an ordinary file would have.
        if target.exists():
            shutil.copymode(target, temporary)
        else:
            os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# An instant is final once it is this much older than now: a store writer records and
# commits within it (what GET ...?as_of= waits for too, api.consistency.SETTLE_S).
SETTLE_S = 1.0


def settle(at: datetime) -> None:
    """Refuse an instant in the future (events recorded before it may still come, so the
    snapshot would stop verifying once they do) and wait until a recent one is final."""
    now = datetime.now(UTC)
    if at > now:
        raise ValueError(f"--as-of {at.isoformat()} lies in the future: events recorded "
                         "before it may still come; give an instant already past")
    wait = (at - now).total_seconds() + SETTLE_S
    if wait > 0:
        time.sleep(wait)


def _verify(args: argparse.Namespace, settings: Settings) -> int:
    app = build_application(settings)
    show, end = progress_bar("verify")
    result: dict[str, Any]
    if args.snapshot is None and args.anchor is None:
        service = build_projections(settings)
        try:
            result = verify(service.db, app, show)
        finally:
            service.close()
    else:
        anchor = None if args.anchor is None else _load_anchor(args.anchor)
        if args.snapshot is not None:
            result = snapshot.check(app, args.snapshot, anchor, show)
        else:
            assert anchor is not None
            result = anchors.check(app, anchor, show)
    end()
    _emit(result)
    return 0 if result["ok"] else 1
