"""The ``pmo`` command. Each subcommand lives in its own module, imported when used."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from pmo.settings import Settings

# name -> (module with add_arguments(parser) and run(args, settings) -> int, help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("pmo.serve", "API plus the whole pipeline in one process"),
    "demo": ("pmo.demo", "load a realistic demo portfolio through the ingest path"),
    "replay": ("pmo.replay", "rebuild projections from the event store"),
    "audit": ("pmo.audit", "verify or export the audit trail"),
    "ingest": ("pmo.workers.ingest", "Kafka worker: pmo.inbound -> event store"),
    "relay": ("pmo.workers.relay", "Kafka worker: event store -> pmo.events"),
    "consume": ("pmo.workers.consume", "Kafka worker: pmo.events -> projections"),
    "publish": ("pmo.workers.publish", "send CloudEvents from a JSON-lines file"),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pmo", description=__doc__)
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
        print(f"pmo: invalid configuration:\n{e}", file=sys.stderr)
        return 2
    if args.command not in modules:
        print(f"pmo: '{args.command}' is not available in this build", file=sys.stderr)
        return 2
    result: int = modules[args.command].run(args, settings)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
