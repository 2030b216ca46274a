"""Read functions for the dashboard: fn(conn, ...) -> polars frame | dict, tested without Streamlit."""


def check_page(sort: str, sort_columns, page: int, page_size: int) -> None:
    """Refuse a sort outside the whitelist or a page outside 1.. / a size outside 1..1000."""
    from tasks.errors import ValidationError

    if sort not in sort_columns:
        raise ValidationError("sort", f"unknown sort {sort!r}; use one of {', '.join(sort_columns)}")
    if page < 1 or not 1 <= page_size <= 1000:
        raise ValidationError("page", f"page {page} of size {page_size} is out of range")
