"""Store URLs (``sqlite:///path``, ``postgresql://user:pw@host:port/db?schema=s``) as settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import ParseResult, parse_qs, unquote, urlparse

import psycopg
from psycopg import sql

from storage.sqlite_wal import prepare_wal_file


@dataclass(frozen=True, slots=True)
class StoreUrl:
    kind: str  # "sqlite" or "postgresql"
    path: str = ""
    host: str = ""
    port: int = 5432
    user: str = ""
    password: str = ""
    dbname: str = ""
    schema: str = "public"

    @classmethod
    def parse(cls, url: str) -> StoreUrl:
        parsed = urlparse(url)
        if parsed.scheme == "sqlite":
            # sqlite:///relative/file.db and sqlite:////absolute/file.db, as SQLAlchemy reads them
            path = unquote(url.split("?", 1)[0][len("sqlite:///"):]) if url.startswith(
                "sqlite:///") else ""
            if not path:
                raise ValueError(f"a sqlite URL needs a file path: {url!r}")
            return cls("sqlite", path=path)
        if parsed.scheme in ("postgresql", "postgres"):
            query = parse_qs(parsed.query)
            return cls(
                "postgresql",
                host=parsed.hostname or "127.0.0.1",
                port=parsed.port or 5432,
                user=unquote(parsed.username or ""),
                password=unquote(parsed.password or ""),
                dbname=parsed.path.lstrip("/") or "postgres",
                schema=query.get("schema", ["public"])[0],
            )
        raise ValueError(f"unsupported store URL {_shown(parsed)!r}: use sqlite:///path or "
                         "postgresql://user:pw@host/db")

    @classmethod
    def sqlite_in(cls, directory: Path, filename: str) -> StoreUrl:
        return cls("sqlite", path=str(directory / filename))

    def event_store_env(self) -> dict[str, str]:
        """The eventsourcing environment of the PMO application for this store."""
        if self.kind == "sqlite":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            prepare_wal_file(self.path)
            return {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": self.path,
                "SQLITE_LOCK_TIMEOUT": "30",
                "APPLICATION_RECORDER_TOPIC": "storage.recorders:PmoSQLiteRecorder",
            }
        self.ensure_schema()
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": self.dbname,
            "POSTGRES_HOST": self.host,
            "POSTGRES_PORT": str(self.port),
            "POSTGRES_USER": self.user,
            "POSTGRES_PASSWORD": self.password,
            "POSTGRES_SCHEMA": self.schema,
            # Never wait forever for the insert lock (the library's default is 0: forever).
            "POSTGRES_LOCK_TIMEOUT": "10",
            "POSTGRES_POOL_SIZE": "4",
            "POSTGRES_MAX_OVERFLOW": "4",
            "APPLICATION_RECORDER_TOPIC": "storage.recorders:PmoPostgresRecorder",
        }

    def ensure_schema(self) -> None:
        """Create the PostgreSQL schema if it is missing (as a SQLite store's directory is):
        a fresh database with ``?schema=pmo`` then just works."""
        with psycopg.connect(self.psycopg_conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                sql.Identifier(self.schema)))

    def exists(self) -> bool:
        """Whether the store is there: its SQLite file, or its PostgreSQL schema. Opening a
        store creates it, which a command that only reads must not do."""
        if self.kind == "sqlite":
            return Path(self.path).is_file()
        with psycopg.connect(self.psycopg_conninfo(), autocommit=True, connect_timeout=10) as conn:
            row = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s",
                               (self.schema,)).fetchone()
        return row is not None

    def psycopg_conninfo(self) -> str:
        return (f"host={self.host} port={self.port} dbname={self.dbname} user={self.user} "
                f"password={self.password}")


def _shown(parsed: ParseResult) -> str:
    """A URL as an error may say it: its password masked (the message reaches logs)."""
    if parsed.password is None:
        return parsed.geturl()
    netloc = parsed.netloc.rpartition("@")
    user = netloc[0].partition(":")[0]
    return parsed._replace(netloc=f"{user}:***@{netloc[2]}").geturl()


# The files SQLite (and this service's writer lock) keep beside a database file.
SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal", ".writer.lock")
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


def same_store(a: StoreUrl, b: StoreUrl) -> bool:
    """Whether writing through ``a`` would write into store ``b``: the same SQLite file (or
    one of its companion files), or the same PostgreSQL schema of the same database on the
    same server, whatever user, password or spelling of the loopback host each names."""
    if a.kind != b.kind:
        return False
    if a.kind == "sqlite":
        target = Path(a.path).resolve()
        store = Path(b.path).resolve()
        return any(target == Path(f"{store}{suffix}") for suffix in SQLITE_COMPANIONS)

    def server(u: StoreUrl) -> tuple[str, int, str, str]:
        host = u.host.lower()
        return ("loopback" if host in _LOOPBACK else host, u.port, u.dbname, u.schema)

    return server(a) == server(b)
