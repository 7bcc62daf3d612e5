"""``python -m bench``: every ``bench/bench_*.py`` module's ``main()``, one after the other."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path


def main() -> int:
    here = str(Path(__file__).parent)
    names = sorted(m.name for m in pkgutil.iter_modules([here]) if m.name.startswith("bench_"))
    failed = []
    for name in names:
        print(f"\n=== bench.{name} ===", flush=True)
        started = time.monotonic()
        try:
            code = importlib.import_module(f"bench.{name}").main()
        except Exception as e:  # one broken bench must not hide the others' figures
            print(f"bench.{name} failed: {type(e).__name__}: {e}", file=sys.stderr)
            code = 1
        print(f"(bench.{name}: {time.monotonic() - started:.0f} s)", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"\nfailed or below target: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
