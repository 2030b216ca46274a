"""Prefect flows over the task functions, the `campaigns` CLI, the demo and `make serve`.

Every entry point imports this package before Prefect, so Prefect's defaults for a self-hosted, offline
product are set here, once; a value the user set is kept:
- without PREFECT_API_URL a flow run starts Prefect's ephemeral server in the process, and Prefect waits
  only 20 s for it: on a busy 2-core machine (a load average of 8) `campaigns import --prefect` failed with
  "Timed out while attempting to connect to ephemeral Prefect API server" — 90 s here;
- Prefect's telemetry heartbeat (on by default) printed a 100-line ERROR traceback ("database is locked"
  on the ephemeral server's SQLite) in the middle of every successful `campaigns import --prefect`, and
  there is no network to send it to — off here.
"""

import os

os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
