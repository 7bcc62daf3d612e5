"""Tampering with the real event store (SQLite file, PostgreSQL schema), as an insider would.

Each mutation edits the store's own tables directly, then ``verify`` (trail against
store) and the anchor check (store against a head kept elsewhere) must find it at or
before its position, with the right ``what``. The random trials run every kind of
mutation many times on both backends (figures in docs/audit.md).
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain.application import PmoApplication
from pmo.bootstrap import build_application
from pmo.settings import Settings
from projections import anchors
from projections.audit_verify import verify
from projections.chain import StoreChain
from projections.runner import EmbeddedRunner
from projections.service import ProjectionService, build_projections
from storage.urls import StoreUrl
from tests.integration.test_projection_views import Publisher, seed

TABLES = ("events", "times", "receipts")


@dataclass
class Store:
    """The event store's tables, edited behind the application's back."""

    url: str
    app: PmoApplication
    service: ProjectionService
    conn: psycopg.Connection[Any] | None = None

    @property
    def postgres(self) -> bool:
        return self.url.startswith("postgresql")

    def sql(self, statement: str) -> str:
        table = self.app.recorder.events_table_name  # type: ignore[attr-defined]
        names = ({"events": table, "times": f"{table}_times",
                  "receipts": f"{table}_receipts", "pos": "notification_id",
                  "day": "interval '1 day'"} if self.postgres else
                 {"events": "stored_events", "times": "event_times",
                  "receipts": "inbound_receipts", "pos": "rowid", "day": "86400000000"})
        statement = statement.format(**names)
        return statement.replace("?", "%s") if self.postgres else statement

    def run(self, *statements: tuple[str, tuple[Any, ...]]) -> list[Any]:
        rows: list[Any] = []
        if self.postgres:
            if self.conn is None:
                parsed = StoreUrl.parse(self.url)
                self.conn = psycopg.connect(parsed.psycopg_conninfo())
                self.conn.execute(f'SET search_path TO "{parsed.schema}"')
                self.conn.commit()
            with self.conn.transaction():
                for statement, params in statements:
                    cur = self.conn.execute(self.sql(statement), params)  # type: ignore[arg-type]
                    rows = cur.fetchall() if cur.description else rows
            return rows
        with sqlite3.connect(StoreUrl.parse(self.url).path) as conn:
            for statement, params in statements:
                cur = conn.execute(self.sql(statement), params)
                rows = cur.fetchall() if cur.description else rows
        return rows

    def one(self, statement: str, *params: Any) -> Any:
        return self.run((statement, params))[0]

    def save(self) -> None:
        # SQLite's positions are rowids, which SELECT * leaves out: kept as a column.
        events = "{pos} AS pos_, originator_id, originator_version, topic, state"
        self.run((f"CREATE TABLE {{events}}_orig AS SELECT {events} FROM {{events}}", ()),
                 *[(f"CREATE TABLE {{{t}}}_orig AS SELECT * FROM {{{t}}}", ())
                   for t in TABLES[1:]])

    def restore(self) -> None:
        columns = "originator_id, originator_version, topic, state"
        self.run(*[(f"DELETE FROM {{{t}}}", ()) for t in TABLES],
                 (f"INSERT INTO {{events}} ({{pos}}, {columns}) SELECT pos_, {columns} "
                  "FROM {events}_orig", ()),
                 *[(f"INSERT INTO {{{t}}} SELECT * FROM {{{t}}}_orig", ())
                   for t in TABLES[1:]])


@pytest.fixture
def store(store_url: str, tmp_path: Path) -> Iterator[Store]:
    settings = Settings(event_store_url=store_url, data_dir=tmp_path, _env_file=None)
    app = build_application(settings)
    service = build_projections(settings)
    seed(Publisher(app))
    EmbeddedRunner(app, service).catch_up()
    yield (s := Store(store_url, app, service))
    if s.conn is not None:
        s.conn.close()
    service.close()
    app.close()


def broken(s: Store) -> tuple[int, str]:
    result = verify(s.service.db, s.app)
    assert result["ok"] is False, result
    return result["broken_at"], result["what"]


def last_receipt(s: Store) -> tuple[int, str, str]:
    """The newest receipt: its position, source and id."""
    position, source, event_id = s.one("SELECT position, source, event_id FROM {receipts} "
                                       "ORDER BY position DESC LIMIT 1")
    return position, source, event_id


def test_verify_reports_the_head_and_checks_every_event(store: Store) -> None:
    head = store.app.recorder.max_notification_id()
    result = verify(store.service.db, store.app)
    assert result["ok"] is True and result["checked"] == head == result["store_head"]
    assert result["head_hash"] == anchors.store_head(store.app)[1]


def test_an_edited_recording_time_is_found_at_its_position(store: Store) -> None:
    store.run(("UPDATE {times} SET recorded_at = recorded_at - {day} WHERE position = 6", ()))
    assert broken(store) == (6, "time")


def test_a_deleted_recording_time_is_found(store: Store) -> None:
    store.run(("DELETE FROM {times} WHERE position = 4", ()))
    assert broken(store) == (4, "time")


def test_an_edited_receipt_is_found_at_its_message(store: Store) -> None:
    position, source, _ = last_receipt(store)
    store.run(("UPDATE {receipts} SET source = ? WHERE position = ?", ("urn:forged", position)))
    at, what = broken(store)
    assert what == "receipt" and position - 3 <= at <= position
    store.run(("UPDATE {receipts} SET source = ?, event_id = 'forged' WHERE position = ?",
               (source, position)))
    assert broken(store)[1] == "receipt"


def test_a_receipt_moved_to_another_event_is_found(store: Store) -> None:
    store.run(("UPDATE {receipts} SET position = 1 WHERE position = "
               "(SELECT MAX(position) FROM {receipts})", ()))
    assert broken(store)[1] == "receipt"


def test_changed_bytes_deleted_and_swapped_events_are_found(store: Store) -> None:
    store.save()
    store.run(("UPDATE {events} SET state = ? WHERE {pos} = 9",
               (store.one("SELECT state FROM {events} WHERE {pos} = 9")[0]
                .replace(b'"tester"', b'"intruder"'),)))
    assert broken(store) == (9, "body")
    store.restore()
    store.run(("DELETE FROM {events} WHERE {pos} = 7", ()))
    assert broken(store) == (7, "missing")
    store.restore()
    swap_rows(store, 5, 11)
    assert broken(store) == (5, "order")
    store.restore()
    head = store.app.recorder.max_notification_id()
    store.run(("DELETE FROM {events} WHERE {pos} >= ?", (head - 2,)))
    assert broken(store) == (head - 2, "missing")
    store.restore()
    assert verify(store.service.db, store.app)["ok"] is True


def swap_rows(s: Store, a: int, b: int) -> None:
    (oa, va, ta, sa), (ob, vb, tb, sb) = s.run((
        "SELECT originator_id, originator_version, topic, state FROM {events} "
        "WHERE {pos} IN (?, ?) ORDER BY {pos}", (a, b)))
    s.run(("UPDATE {events} SET originator_version = -1 WHERE {pos} = ?", (a,)),
          ("UPDATE {events} SET originator_id = ?, originator_version = ?, topic = ?, state = ? "
           "WHERE {pos} = ?", (oa, va, ta, sa, b)),
          ("UPDATE {events} SET originator_id = ?, originator_version = ?, topic = ?, state = ? "
           "WHERE {pos} = ?", (ob, vb, tb, sb, a)))


def test_an_unbuilt_trail_is_never_ok(store_url: str, tmp_path: Path) -> None:
    settings = Settings(event_store_url=store_url, data_dir=tmp_path, _env_file=None)
    app = build_application(settings)
    service = build_projections(settings)
    assert verify(service.db, app)["ok"] is True  # an empty store, an empty trail
    seed(Publisher(app))
    result = verify(service.db, app)
    assert (result["ok"], result["broken_at"], result["what"], result["checked"]) == (
        False, 1, "unbuilt", 0)
    service.close()
    app.close()


def rewrite_trail(s: Store) -> None:
    """The insider's second step: the whole trail recomputed from the edited store."""
    links = list(StoreChain(s.app))
    with s.service.db.transaction() as tx:
        tx.execute("DELETE FROM pv_audit_chain")
        for lk in links:
            tx.execute("UPDATE pv_audit SET store_id = ?, version = ?, type = ?, "
                       "recorded_us = ?, digest = ? WHERE position = ?",
                       (lk.store_id, lk.version, lk.topic, lk.recorded_us, lk.digest,
                        lk.position))
        known = {p for (p,) in tx.query("SELECT position FROM pv_audit")}
        tx.executemany("INSERT INTO pv_audit (position, store_id, version, type, recorded_us, "
                       "digest) VALUES (?, ?, ?, ?, ?, ?)",
                       [(lk.position, lk.store_id, lk.version, lk.topic, lk.recorded_us or 0,
                         lk.digest) for lk in links if lk.position not in known])
        tx.executemany("INSERT INTO pv_audit_chain (position, hash) VALUES (?, ?)",
                       [(lk.position, lk.hash) for lk in links])
        tx.execute("DELETE FROM pv_audit WHERE position NOT IN "
                   "(SELECT position FROM pv_audit_chain)")


def test_an_anchor_finds_an_edit_hidden_by_a_recomputed_trail(store: Store) -> None:
    key = Ed25519PrivateKey.generate()
    cp = anchors.sign(key, *anchors.store_head(store.app)[:2])
    assert anchors.check(store.app, cp)["ok"] is True
    store.run(("UPDATE {times} SET recorded_at = recorded_at - {day} WHERE position = 6", ()))
    rewrite_trail(store)
    assert verify(store.service.db, store.app)["ok"] is True  # the trail alone is fooled
    result = anchors.check(store.app, cp)
    assert (result["ok"], result["what"], result["signature_valid"]) == (False, "head", True)


def test_a_forged_anchor_signature_is_refused(store: Store) -> None:
    cp = anchors.sign(Ed25519PrivateKey.generate(), *anchors.store_head(store.app)[:2])
    forged = anchors.Checkpoint(cp.position, "0" * 64, cp.recorded_at, cp.public_key,
                                cp.signature)
    assert anchors.check(store.app, forged)["what"] == "signature"


# -- random trials ---------------------------------------------------------------------

Mutation = Callable[[Store, random.Random, int], int]  # returns the position it touched


def _body_byte(s: Store, rng: random.Random, head: int) -> int:
    p = rng.randint(1, head)
    state = bytearray(s.one("SELECT state FROM {events} WHERE {pos} = ?", p)[0])
    i = rng.randrange(len(state))
    state[i] = (state[i] + rng.randint(1, 255)) % 256
    s.run(("UPDATE {events} SET state = ? WHERE {pos} = ?", (bytes(state), p)))
    return p


def _delete(s: Store, rng: random.Random, head: int) -> int:
    p = rng.randint(1, head)
    s.run(("DELETE FROM {events} WHERE {pos} = ?", (p,)))
    return p


def _swap(s: Store, rng: random.Random, head: int) -> int:
    a, b = sorted(rng.sample(range(1, head + 1), 2))
    swap_rows(s, a, b)
    return a


def _reorder_versions(s: Store, rng: random.Random, head: int) -> int:
    oid = s.one("SELECT originator_id FROM {events} WHERE originator_version = 2 "
                "ORDER BY {pos} LIMIT 1 OFFSET ?", rng.randrange(3))[0]
    (a, va), (b, vb) = s.run(("SELECT {pos}, originator_version FROM {events} WHERE "
                              "originator_id = ? AND originator_version IN (1, 2) "
                              "ORDER BY {pos}", (oid,)))
    s.run(("UPDATE {events} SET originator_version = -1 WHERE {pos} = ?", (a,)),
          ("UPDATE {events} SET originator_version = ? WHERE {pos} = ?", (va, b)),
          ("UPDATE {events} SET originator_version = ? WHERE {pos} = ?", (vb, a)))
    return int(a)


def _type(s: Store, rng: random.Random, head: int) -> int:
    p = rng.randint(1, head)
    s.run(("UPDATE {events} SET topic = ? WHERE {pos} = ?",
           (rng.choice(["pmo.project.approved", "pmo.project.cost_recorded", "x"]) + "!", p)))
    return p


def _time(s: Store, rng: random.Random, head: int) -> int:
    p = rng.randint(1, head)
    delta = rng.choice([1, 1000, 86_400_000_000, -1, -3_600_000_000])
    if s.postgres:
        s.run(("UPDATE {times} SET recorded_at = recorded_at + make_interval(secs => ?) "
               "WHERE position = ?", (delta / 1_000_000, p)))
    else:
        s.run(("UPDATE {times} SET recorded_at = recorded_at + ? WHERE position = ?",
               (delta, p)))
    return p


def _receipt(s: Store, rng: random.Random, head: int) -> int:
    rows = s.run(("SELECT position FROM {receipts} ORDER BY position", ()))
    p = int(rng.choice(rows)[0])
    column = rng.choice(["source", "event_id"])
    s.run((f"UPDATE {{receipts}} SET {column} = {column} || ? WHERE position = ?",
           (rng.choice(["~", " ", "#x"]), p)))
    return p


def _forge(s: Store, rng: random.Random, head: int) -> int:
    """A forged event appended: a copy of a real body under its aggregate's next version."""
    p = rng.randint(1, head)
    oid, topic, state = s.one("SELECT originator_id, topic, state FROM {events} "
                              "WHERE {pos} = ?", p)
    version = s.one("SELECT MAX(originator_version) FROM {events} WHERE originator_id = ?",
                    oid)[0] + 1
    s.run(("INSERT INTO {events} (originator_id, originator_version, topic, state) "
           "VALUES (?, ?, ?, ?)", (oid, version, topic, state)))
    return int(s.one("SELECT MAX({pos}) FROM {events}")[0])  # PostgreSQL's sequence moved on


def _truncate(s: Store, rng: random.Random, head: int) -> int:
    p = rng.randint(max(1, head - 5), head)
    s.run(("DELETE FROM {events} WHERE {pos} >= ?", (p,)))
    return p


MUTATIONS: dict[str, Mutation] = {
    "body": _body_byte, "delete": _delete, "swap": _swap, "reorder": _reorder_versions,
    "type": _type, "time": _time, "receipt": _receipt, "forge": _forge,
    "truncate": _truncate}


def trials(s: Store, count: int, seed_: int) -> dict[str, int]:
    rng = random.Random(seed_)
    head = s.app.recorder.max_notification_id()
    assert head is not None
    cp = anchors.sign(Ed25519PrivateKey.generate(), *anchors.store_head(s.app)[:2])
    s.save()
    found: dict[str, int] = {}
    for n in range(count):
        kind = rng.choice(sorted(MUTATIONS))
        touched = MUTATIONS[kind](s, rng, head)
        result = verify(s.service.db, s.app)
        assert result["ok"] is False and result["broken_at"] <= touched, (kind, result)
        rewritten = n % 4 == 0
        if rewritten:
            # The insider also rewrites the trail to match: only the anchor finds it.
            rewrite_trail(s)
            if kind == "forge":  # after the anchored head: its copied receipt betrays it
                assert broken(s) == (touched, "receipt")
            else:
                assert anchors.check(s.app, cp)["ok"] is False, kind
        found[kind] = found.get(kind, 0) + 1
        s.restore()
        if rewritten:
            s.service.audit.clear()
            EmbeddedRunner(s.app, s.service).catch_up()
    assert verify(s.service.db, s.app)["ok"] is True
    return found


TRIALS = 500  # per backend: 1,000 in all (docs/audit.md)


def test_random_single_mutations_are_all_found(store: Store) -> None:
    found = trials(store, TRIALS, 20261130)
    print(f"trials on {store.url.split(':')[0]}: {dict(sorted(found.items()))}")  # pytest -s
    assert sum(found.values()) == TRIALS and set(found) == set(MUTATIONS)
