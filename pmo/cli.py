"""The ``pmo`` command. Each subcommand lives in its own module, imported when used."""

from __future__ import annotations

import argparse
import importlib
import sqlite3
import sys
from collections.abc import Sequence

from pydantic import ValidationError
from pydantic_settings import SettingsError

from pmo.settings import Settings

# What `pmo --help` says to a user (the module's docstring is for whoever reads the code).
DESCRIPTION = ("pmo-ledger, an event-sourced PMO portfolio service. `pmo COMMAND --help` "
               "for a command's options; README.md and docs/ for the rest.")

# name -> (module with add_arguments(parser) and run(args, settings) -> int, help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("pmo.serve", "API, dashboard and the whole pipeline in one command"),
    "demo": ("pmo.demo", "load a realistic demo portfolio through the ingest path"),
    "replay": ("pmo.replay", "rebuild projections from the event store"),
    "audit": ("pmo.audit", "verify or export the audit trail"),
    "ingest": ("pmo.workers.ingest", "Kafka worker: pmo.inbound -> event store"),
    "relay": ("pmo.workers.relay", "Kafka worker: event store -> pmo.events"),
    "consume": ("pmo.workers.consume", "Kafka worker: pmo.events -> projections"),
    "publish": ("pmo.workers.publish", "send CloudEvents from a JSON-lines file"),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pmo", description=DESCRIPTION)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    modules = {}
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name != module_name:
                raise
            continue  # not part of this build
        module.add_arguments(sub)
        modules[name] = module
    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as e:
        print(f"pmo: invalid configuration:\n{said(e)}", file=sys.stderr)
        return 2
    except SettingsError as e:  # a value that is not even JSON, e.g. PMO_API_KEYS
        print(f"pmo: invalid configuration: {e}: {e.__cause__}", file=sys.stderr)
        return 2
    if args.command not in modules:
        print(f"pmo: '{args.command}' is not available in this build", file=sys.stderr)
        return 2
    try:
        result: int = modules[args.command].run(args, settings)
    except Exception as e:
        if not environmental(e) or settings.log_level == "DEBUG":
            raise
        print(f"pmo {args.command}: {e}\n(PMO_LOG_LEVEL=DEBUG shows where)", file=sys.stderr)
        return 1
    return result


# Fields whose values are secrets: an API key is a key of PMO_API_KEYS, a store URL may
# hold a password. pydantic's own text of an error repeats the value and the key.
SECRET_KEYS = {"api_keys"}


def said(error: ValidationError) -> str:
    """A configuration error, one line per field, without the values given: pydantic's
    own text printed the input (a store URL with its password) and the path of the
    error (an API key, which is a key of PMO_API_KEYS) to stderr, and so to logs."""
    lines = []
    for e in error.errors(include_url=False, include_input=False, include_context=False):
        loc = [str(part) for part in e["loc"]]
        if loc and loc[0] in SECRET_KEYS and len(loc) > 1:
            loc[1] = "<a key>"
        field = f"PMO_{loc[0].upper()}" if loc else "PMO_*"
        where = "".join(f"[{part}]" for part in loc[1:])
        lines.append(f"  {field}{where}: {e['msg']}")
    return "\n".join(lines)


def environmental(error: Exception) -> bool:
    """An error of the machine, not of the program: a store that does not answer or
    refuses the password, a data directory that cannot be made. Said in one line."""
    if isinstance(error, OSError | sqlite3.OperationalError):
        return True
    psycopg = sys.modules.get("psycopg")  # imported only when a PostgreSQL URL is used
    return psycopg is not None and isinstance(error, psycopg.OperationalError)


if __name__ == "__main__":
    raise SystemExit(main())
