"""Prefect flows over the task functions, the `campaigns` CLI, the demo and `make serve`.

Without PREFECT_API_URL a flow run starts Prefect's ephemeral server in the process, and Prefect waits
only 20 s for it: on a busy 2-core machine (a load average of 8) `campaigns import --prefect` failed with
"Timed out while attempting to connect to ephemeral Prefect API server". Every entry point imports this
package before Prefect, so the longer default is set here, once; a value the user set is kept.
"""

import os

os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
