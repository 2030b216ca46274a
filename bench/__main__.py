"""Run every benchmark (`bench/bench_*.py`, each module's `main()`) in turn: `python -m bench`.

BENCH_ONLY=metrics runs only the benchmarks whose name contains that text (comma-separated list).
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import time

import bench


def selected(names: list[str], only: str | None) -> list[str]:
    """The benchmark module names to run, in name order, filtered by BENCH_ONLY."""
    wanted = [w.strip() for w in (only or "").split(",") if w.strip()]
    return sorted(n for n in names if not wanted or any(w in n for w in wanted))


def main() -> None:
    names = [m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_")]
    for name in selected(names, os.environ.get("BENCH_ONLY")):
        print(f"\n=== {name} ===", flush=True)
        started = time.perf_counter()
        importlib.import_module(f"bench.{name}").main()
        print(f"--- {name} done in {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
