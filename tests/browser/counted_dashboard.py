"""`python -m tests.browser.counted_dashboard run dashboards/app.py ...`: `streamlit run`, with one query of each
campaign-page tab writing its tab's name to the file $COUNTED_QUERIES_LOG each time it is called.

Tests read the file to see which tabs' work an interaction did (each query below is called by its tab alone).
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from pathlib import Path

# A query each tab runs every time it is drawn, and only that tab; the tabs call them as module attributes.
TAB_QUERIES = {
    "Settings": "dashboards.queries.smart.campaign_numbers",
    "Call Logs": "dashboards.queries.calls.call_page",
    "Contact List": "dashboards.queries.contacts.contact_page",
    "Metrics": "dashboards.queries.metrics.kpis_and_funnel",
}


def count_calls(log: Path) -> None:
    """Replace each query of TAB_QUERIES by one that appends its tab's name to `log`, then runs it."""
    for tab, target in TAB_QUERIES.items():
        module_name, name = target.rsplit(".", 1)
        module = importlib.import_module(module_name)
        query = getattr(module, name)

        @functools.wraps(query)
        def counted(*args, _query=query, _tab=tab, **kwargs):
            with log.open("a") as out:
                out.write(_tab + "\n")
            return _query(*args, **kwargs)

        setattr(module, name, counted)


if __name__ == "__main__":
    count_calls(Path(os.environ["COUNTED_QUERIES_LOG"]))
    from streamlit.web.cli import main

    sys.argv = ["streamlit", *sys.argv[1:]]
    sys.exit(main())
