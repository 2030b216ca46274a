"""The contact import: read -> map -> normalise -> validate -> upsert -> enroll, as a plain function
(`run_import`, used by the CLI and the dashboard) and as the Prefect flow `import_contacts`."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl

from tasks import contacts_import as ci
from tasks.phones import check_region
from tasks.store import connect, db_path

# The pipeline's steps by name; the Prefect flow swaps in @task wrappers of the same functions.
PLAIN_STEPS: dict[str, Callable[..., Any]] = {
    "read": ci.read_contacts_file,
    "map": ci.map_columns,
    "apply": ci.apply_mapping,
    "normalise": ci.normalise,
    "validate": ci.validate,
    "merge": ci.merge_duplicates,
    "upsert": ci.upsert_contacts,
    "enroll": ci.enroll_contacts,
}


def run_import(
    campaign_id: int,
    path: str | Path,
    mapping: Mapping[str, str] | None = None,
    default_country: str | None = None,
    sheet: str | None = None,
    dry_run: bool = False,
    db: str | Path | None = None,
    now: datetime | None = None,
    report_path: str | Path | None = None,
    steps: Mapping[str, Callable[..., Any]] = PLAIN_STEPS,
) -> ci.ImportResult:
    """Import a contacts file into the CRM and enroll it in the campaign: every valid row or nothing.

    A row is valid with a good phone; a bad value of another field is left empty (the result's `warnings`).
    ``mapping`` overrides the suggested {source column: target}. National numbers use the
    campaign's country, else ``default_country``. A dry run does all the work in a transaction
    that is rolled back, so its counts are exactly what a real import would do.
    """
    now = now or datetime.now(timezone.utc)
    with connect(db) as conn:  # short: the slow work below runs without holding the file
        country = ci.campaign_country(conn, campaign_id)
    region = check_region(country) or check_region(default_country)
    frame = steps["read"](path, sheet)
    resolved = steps["map"](frame, dict(mapping or {}), Path(path).name)
    mapped = steps["apply"](frame, resolved)
    rows = mapped.height
    del frame  # a million-row file: let each intermediate frame go as soon as the next exists
    normalised = steps["normalise"](mapped, region)
    del mapped
    valid, rejects, warnings = steps["validate"](normalised, resolved)
    del normalised
    merged, duplicates = steps["merge"](valid)
    del valid
    result = ci.ImportResult(
        campaign_id=campaign_id, file=str(path), mapping=resolved, country=region, rows=rows,
        duplicates_merged=duplicates, invalid=rejects["row"].n_unique(), warned=warnings["row"].n_unique(),
        dry_run=dry_run, rejected=rejects.to_dicts(), warnings=warnings.to_dicts(),
    )
    # The report is written first, beside its target, and moved into place once the import is
    # committed: a report that cannot be written stops the import before anything is stored.
    staged = (ci.stage_report(ci.report_lines(rejects, warnings), report_path, kept_files(db, path))
              if report_path is not None else None)
    try:
        if merged.height:  # no valid row: nothing to write, and no import_runs row (an import of nothing failed)
            _write(db, result, merged, steps, now)
    except BaseException:
        if staged is not None:
            staged.unlink(missing_ok=True)
        raise
    if staged is not None:
        os.replace(staged, report_path)
    return result


def _write(db, result: ci.ImportResult, merged: pl.DataFrame, steps: Mapping[str, Callable[..., Any]],
           now: datetime) -> None:
    """Upsert the valid rows and enroll them in one transaction (rolled back for a dry run), with the
    import's audit row; fills the result's counts."""
    with connect(db) as conn:
        conn.execute("begin transaction")
        try:
            ci.campaign_country(conn, result.campaign_id)  # still there after the slow part
            result.imported, result.updated = steps["upsert"](conn, merged, now)
            result.enrolled = steps["enroll"](conn, result.campaign_id, merged, now)
            if not result.dry_run:
                result.import_id = ci.record_import(conn, result, now)
        except BaseException:
            conn.execute("rollback")
            raise
        conn.execute("rollback" if result.dry_run else "commit")


def check_import(
    campaign_id: int,
    path: str | Path,
    mapping: Mapping[str, str] | None = None,
    default_country: str | None = None,
    sheet: str | None = None,
    db: str | Path | None = None,
    report_path: str | Path | None = None,
) -> pl.DataFrame:
    """Raise the UserError an import of these inputs would stop on (campaign, country, file, mapping, report);
    else return the file as read, for the import to use (`file_already_read`) instead of reading it again.

    For callers that start the import where its errors are hard to show as one line (the Prefect flow
    logs them with tracebacks). Rejected rows are not errors: they are the import's report.
    """
    with connect(db) as conn:
        country = ci.campaign_country(conn, campaign_id)
    check_region(country) or check_region(default_country)
    frame = ci.read_contacts_file(path, sheet)
    ci.map_columns(frame, dict(mapping or {}), Path(path).name)
    if report_path is not None:
        ci.check_report_path(report_path, kept_files(db, path))
    return frame


def kept_files(db: str | Path | None, path: str | Path) -> dict[Path, str]:
    """Files a --report must never replace: the store (and its write-ahead log) and the imported file."""
    store = db_path(db)
    return {store: "the database", store.with_name(store.name + ".wal"): "the database's log",
            Path(path): "the file being imported"}


# A file read (and checked) before the flow started: (path, sheet, [frame]). The flow's read step takes
# the frame out of its list, so nothing but the import holds it once the import is under way.
_ALREADY_READ: ContextVar[tuple[str, str | None, list[pl.DataFrame]] | None] = ContextVar(
    "import_file_already_read", default=None
)


@contextmanager
def file_already_read(path: str | Path, sheet: str | None, frame: pl.DataFrame) -> Iterator[None]:
    """Within the block, an import of ``path`` (and ``sheet``) in this thread uses ``frame`` instead of
    reading the file: the CLI checks the file before starting the flow, and a large file is read once."""
    token = _ALREADY_READ.set((str(path), sheet, [frame]))
    try:
        yield
    finally:
        _ALREADY_READ.reset(token)


def read_once(path: str | Path, sheet: str | None = None) -> pl.DataFrame:
    """`read_contacts_file`, unless this file was already read for this import (`file_already_read`)."""
    held = _ALREADY_READ.get()
    if held is not None and held[0] == str(path) and held[1] == sheet and held[2]:
        return held[2].pop()
    return ci.read_contacts_file(path, sheet)


def _prefect_steps() -> dict[str, Callable[..., Any]]:
    from prefect import task
    from prefect.cache_policies import NO_CACHE

    # Frames and connections are not worth hashing or persisting: no caching, no result storage.
    def wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        return task(name=f"import-{name}", cache_policy=NO_CACHE, persist_result=False)(fn)

    return {name: wrap(name, fn) for name, fn in {**PLAIN_STEPS, "read": read_once}.items()}


def _build_flow():
    from prefect import flow

    steps = _prefect_steps()

    @flow(name="import-contacts", persist_result=False)  # as its deployment: import-contacts/import-contacts
    def import_contacts(
        campaign_id: int,
        path: str,
        mapping: dict[str, str] | None = None,
        default_country: str | None = None,
        sheet: str | None = None,
        dry_run: bool = False,
        db: str | None = None,
        report_path: str | None = None,
        now: datetime | None = None,
    ) -> dict:
        """Import a CSV/XLSX of contacts into the CRM and enroll them in a campaign; ``report_path``
        receives the rejected rows and the fields left empty (CSV) once the import is committed. ``now``
        dates the contacts and enrollments (default: the clock), e.g. a demo's story set before its
        simulated calls."""
        from prefect.states import Completed, Failed

        result = run_import(
            campaign_id, path, mapping=mapping, default_country=default_country, sheet=sheet,
            dry_run=dry_run, db=db, report_path=report_path, steps=steps, now=now,
        ).to_dict()
        message = (f"rows {result['rows']}, imported {result['imported']}, updated {result['updated']}, "
                   f"enrolled {result['enrolled']}, invalid {result['invalid']}")
        if ci.every_row_rejected(result):
            # a wrong file (another sheet, the phone column mapped wrong) imports nothing: Failed, so a scheduled
            # import alerts; the result (with every rejected row) is the state's data
            return Failed(message=f"every row was rejected: {message}", data=result)
        return Completed(message=message, data=result)

    return import_contacts


def __getattr__(name: str):
    # `import_contacts` is built on first use so importing this module does not import Prefect (≈1 s).
    if name == "import_contacts":
        globals()["import_contacts"] = _build_flow()
        return globals()["import_contacts"]
    raise AttributeError(name)
