"""Outside trials of ``pmo audit`` and ``pmo replay --into``: what a user can hand them.

Each case here was a traceback, a silent success or damage before its fix (see the
commit that added it). Commands run in-process (``pmo.cli.main``) so a traceback fails
the test as the exception itself; the store is a real SQLite store in ``tmp_path``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from pmo.bootstrap import build_application
from pmo.cli import main
from pmo.settings import Settings
from projections import bluegreen
from projections.anchors import MAX_POSITION, Checkpoint
from projections.service import build_projections
from tests.conftest import POSTGRES_URL, drop_postgres_schema, fresh_postgres_schema
from tests.e2e.conftest import pmo_command
from tests.e2e.test_views_cli import stored
from tests.integration.test_projection_views import Publisher, seed


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A seeded SQLite store with its views built; the commands see it through the env."""
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    for name in ("PMO_EVENT_STORE_URL", "PMO_PROJECTION_STORE_URL", "PMO_KAFKA_BOOTSTRAP"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PMO_DATA_DIR", stored(tmp_path)["PMO_DATA_DIR"])
    assert main(["replay"]) == 0
    yield tmp_path / "data"


def pmo(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def tables(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return sorted(r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'"))


def test_replay_into_never_writes_onto_a_store_of_the_service(
        store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events, views = store / "events.sqlite", store / "projections.sqlite"
    before = tables(events)
    # Before the fix the first two wrote every projection table into events.sqlite, and
    # a SQLite database over the live store's write-ahead log.
    for url in (f"sqlite:///{events}", f"sqlite:///{events}-wal", f"sqlite:///{events}-shm",
                f"sqlite:///{store}/../data/events.sqlite", f"sqlite:///{views}-wal",
                f"sqlite:///{views}"):
        code, _, err = pmo(capsys, "replay", "--until", "2026-01-01T00:00:00Z", "--into", url)
        assert code == 2 and "names the" in err, (url, err)
    assert tables(events) == before
    assert not Path(f"{events}-wal.writer.lock").exists()


def test_replay_into_the_same_postgres_schema_spelled_otherwise_is_refused(
        store: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # Refused before anything connects: the schema named here is never created.
    monkeypatch.setenv("PMO_EVENT_STORE_URL", f"{POSTGRES_URL}?schema=never_made_here")
    other = "postgresql://someone:else@localhost:5432/pmo?schema=never_made_here"
    code, _, err = pmo(capsys, "replay", "--until", "2026-01-01T00:00:00Z", "--into", other)
    assert code == 2 and "names the event store" in err


def test_an_into_that_cannot_be_written_is_a_clear_error(
        store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a database")
    for url, why in ((f"sqlite:///{tmp_path}", "is a directory"),
                     (f"sqlite:///{text}", "not a SQLite database"),
                     (f"sqlite:///{os.devnull}", "not a regular file"),
                     ("postgresql://nobody:s3cret@127.0.0.1:1/db", "cannot open")):
        code, _, err = pmo(capsys, "replay", "--until", "2026-01-01T00:00:00Z", "--into", url)
        assert code == 2 and why in err, (url, err)
        assert "s3cret" not in err  # the password of a URL is never echoed
    assert text.read_text() == "not a database"
    code, out, _ = pmo(capsys, "replay", "--until", "2026-01-01T00:00:00Z", "--into",
                       f"sqlite:///{tmp_path / 'as-of.sqlite'}")
    assert code == 0 and "replayed 0 positions" in out


def key_file(path: Path, mode: int, password: bytes | None = None) -> Path:
    encryption = BestAvailableEncryption(password) if password else None
    key = Ed25519PrivateKey.generate()
    path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8,
                                       encryption or NoEncryption()))
    path.chmod(mode)
    return path


def test_signing_keys_that_cannot_sign_safely_are_refused(
        store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = {
        key_file(tmp_path / "encrypted.pem", 0o600, b"pw"): "is encrypted",  # a traceback
        key_file(tmp_path / "open.pem", 0o644, None): "open to other users",  # silently used
        key_file(tmp_path / "group.pem", 0o640, None): "open to other users",
        tmp_path: "not a key file",
    }
    for path, why in cases.items():
        code, out, err = pmo(capsys, "audit", "anchor", "--key", str(path))
        assert code == 2 and why in err and out == "", (path, err)
    code, out, _ = pmo(capsys, "audit", "anchor", "--key",
                       str(key_file(tmp_path / "good.pem", 0o600)))
    assert code == 0 and json.loads(out)["position"] > 0


def test_anchor_output_into_a_device_fifo_or_link_writes_into_it(
        store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Before the fix a file was renamed over the target: as root, --output /dev/full
    # replaced the device node with a regular file.
    to_null = tmp_path / "to-null"
    to_null.symlink_to(os.devnull)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    real = tmp_path / "real.json"
    real.write_text("{}")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    for output in (to_null, fifo, link):
        code, _, err = pmo(capsys, "audit", "anchor", "--output", str(output))
        assert code == 0, err
    reader.join(10)
    assert to_null.is_symlink() and stat.S_ISCHR(Path(os.devnull).stat().st_mode)
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and json.loads(received[0])["position"] > 0
    assert link.is_symlink() and json.loads(real.read_text())["position"] > 0


def anchored(store: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, out, err = pmo(capsys, "audit", "anchor")
    assert code == 0, err
    anchor: dict[str, Any] = json.loads(out)
    return anchor


def test_an_edited_anchor_field_is_refused_not_coerced(
        store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    anchor = anchored(store, capsys)
    edited = tmp_path / "edited.json"
    # 165.7 used to verify "ok" as position 165 (its signature); 1e30 was a traceback.
    for position in (anchor["position"] + 0.5, float(anchor["position"]), 10**30, -1,
                     str(anchor["position"]), True, None):
        edited.write_text(json.dumps({**anchor, "position": position}))
        code, out, err = pmo(capsys, "audit", "verify", "--anchor", str(edited))
        assert code == 2 and "not an anchor" in err and out == "", (position, err)
    edited.write_text(json.dumps(anchor))
    assert pmo(capsys, "audit", "verify", "--anchor", str(edited))[0] == 0


VALID = {"position": 7, "head_hash": "ab" * 32, "recorded_at": "2026-06-30T00:00:00+00:00",
         "public_key": "cd" * 32, "signature": "ef" * 64}
ANY_JSON = st.recursive(st.none() | st.booleans() | st.integers(min_value=-2**70,
                                                                max_value=2**70)
                        | st.floats(allow_nan=False) | st.text(max_size=70),
                        lambda inner: st.lists(inner, max_size=2), max_leaves=3)


@settings(max_examples=150, derandomize=True, deadline=None)
@given(st.sampled_from(sorted(VALID)), ANY_JSON, st.booleans())
def test_any_edit_of_an_anchor_is_read_as_written_or_refused(field: str, value: Any,
                                                              drop: bool) -> None:
    data = {k: v for k, v in VALID.items() if not (drop and k == field)}
    if not drop:
        data[field] = value
    try:
        cp = Checkpoint.from_json(data)
    except ValueError as e:
        assert str(e).startswith("not an anchor")
        return
    # What is accepted is exactly what as_json writes back: nothing was coerced.
    assert {k: v for k, v in cp.as_json().items() if k in data} == data
    assert type(cp.position) is int and 0 <= cp.position <= MAX_POSITION


def snapshot_of(store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    output = tmp_path / "evidence.sqlite"
    at = (datetime.now(UTC) - timedelta(seconds=2)).isoformat()
    code, _, err = pmo(capsys, "audit", "snapshot", "--as-of", at, "--output", str(output))
    assert code == 0, err
    return output


@pytest.mark.parametrize("damage", [
    "DELETE FROM manifest WHERE key = 'as_of'",
    "DELETE FROM manifest WHERE key = 'head_hash'",
    "DROP TABLE trail",
    "DROP TABLE projects",
    "UPDATE manifest SET value = '2026-01-01T00:00:00' WHERE key = 'as_of'",
    "UPDATE manifest SET value = '1' || substr('000000000000000000000', 1, 21) "
    "WHERE key = 'head_position'",
    "UPDATE manifest SET value = 'x' WHERE key = 'head_position'",
])
def test_a_damaged_snapshot_is_a_clear_refusal(store: Path, tmp_path: Path, damage: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    snapshot = snapshot_of(store, tmp_path, capsys)
    assert pmo(capsys, "audit", "verify", "--snapshot", str(snapshot))[0] == 0
    with sqlite3.connect(snapshot) as conn:
        conn.execute(damage)
    code, out, err = pmo(capsys, "audit", "verify", "--snapshot", str(snapshot))
    assert code == 2 and str(snapshot) in err and out == "", err


def test_snapshot_refuses_a_future_instant_and_a_missing_directory(
        store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A snapshot as of tomorrow stopped verifying as soon as one more event was stored.
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    code, _, err = pmo(capsys, "audit", "snapshot", "--as-of", tomorrow,
                       "--output", str(tmp_path / "future.sqlite"))
    assert code == 2 and "lies in the future" in err
    assert not (tmp_path / "future.sqlite").exists()
    code, _, err = pmo(capsys, "audit", "snapshot", "--as-of", "2026-01-01T00:00:00Z",
                       "--output", str(tmp_path / "no" / "such" / "dir.sqlite"))
    assert code == 2 and "does not exist" in err  # was a sqlite3 traceback
    now = datetime.now(UTC).isoformat()  # the present is final after the settling second
    code, out, err = pmo(capsys, "audit", "snapshot", "--as-of", now,
                         "--output", str(tmp_path / "now.sqlite"))
    assert code == 0 and json.loads(out)["as_of"] == now, err


@pytest.mark.parametrize("action", [["verify"], ["anchor"], ["export"],
                                    ["snapshot", "--as-of", "2026-01-01T00:00:00Z",
                                     "--output", "s.sqlite"]])
def test_audit_on_a_store_that_is_not_there_says_so_and_creates_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, action: list[str],
        capsys: pytest.CaptureFixture[str]) -> None:
    # A mistyped PMO_DATA_DIR used to create an empty store there, and verify answered
    # {"ok": true, "checked": 0} about it.
    monkeypatch.chdir(tmp_path)
    for name in ("PMO_EVENT_STORE_URL", "PMO_PROJECTION_STORE_URL", "PMO_KAFKA_BOOTSTRAP"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PMO_DATA_DIR", str(tmp_path / "typo"))
    code, out, err = pmo(capsys, "audit", *action)
    assert code == 2 and "no event store at" in err and out == ""
    assert not (tmp_path / "typo").exists()
    monkeypatch.setenv("PMO_EVENT_STORE_URL", f"{POSTGRES_URL}?schema=t_never_created_here")
    code, out, err = pmo(capsys, "audit", *action)
    assert code == 2 and "no event store at schema 't_never_created_here'" in err


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_second_replay_waits_for_the_first_instead_of_building_into_it(
        tmp_path: Path, backend: str) -> None:
    # Two pmo replay runs on PostgreSQL built into one next-version schema at once: one
    # died of the other's rows (duplicate key in pv_audit, pv_tracking dropped by its swap).
    urls: dict[str, str] = {}
    if backend == "postgres":
        urls = {"event_store_url": fresh_postgres_schema(),
                "projection_store_url": fresh_postgres_schema()}
    env = {"PMO_DATA_DIR": str(tmp_path / "data"),
           **{f"PMO_{k.upper()}": v for k, v in urls.items()}}
    config = Settings(data_dir=tmp_path / "data", _env_file=None, **urls)  # type: ignore[call-arg]
    try:
        app = build_application(config)
        seed(Publisher(app))
        app.close()
        service = build_projections(config)
        live = service.projections["projects"]
        rebuilding = ("SELECT 1 FROM pv_tracking WHERE projection = 'projects' "
                      "AND key = '_rebuilding'")
        with bluegreen.building(bluegreen.NextVersion(live, "replay_projects").url):
            replay = pmo_command("replay", "--projection", "projects", env=env, cwd=tmp_path)
            assert replay.stderr is not None
            err: list[str] = []
            reader = threading.Thread(target=lambda: err.extend(replay.stderr or []))
            reader.start()
            deadline = time.monotonic() + 60
            while not any("waiting for it" in line for line in err):
                assert time.monotonic() < deadline and replay.poll() is None, err
                time.sleep(0.05)
            time.sleep(0.3)  # had it not waited, it would be building by now
            assert replay.poll() is None and not list(service.db.query(rebuilding))
        out, _ = replay.communicate(timeout=60)
        reader.join(10)
        assert replay.returncode == 0, err
        assert "replayed" in out
        body = service.project("A")
        assert body is not None and json.loads(body)["actual_cost"] == "200.00"
        service.close()
    finally:
        for url in urls.values():
            drop_postgres_schema(url)
