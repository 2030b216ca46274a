"""Read functions for the dashboard: fn(conn, ...) -> polars frame | dict, tested without Streamlit."""
