"""`make demo`: the main job on the embedded default (local DuckDB file, simulated telephony)."""

from __future__ import annotations

import sys

from tasks.store import init_db


def main() -> int:
    path, version = init_db()
    print(f"demo database ready: {path.resolve()} (schema version {version})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
