"""Contact commands: import a CSV/XLSX into a campaign, remove or edit contacts, export a contact list."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from flows.cli.common import (JsonOpt, app, check_country_option, check_not_a_folder, check_out_file, check_sheet_option,
                              db, emit, export_app, options_named, plain_value, table)
from tasks.errors import ValidationError

contacts_app = typer.Typer(help="CRM contacts and campaign contact lists.", no_args_is_help=True)
app.add_typer(contacts_app, name="contacts")

CampaignArg = Annotated[int, typer.Argument(help="Campaign id.")]
ContactArg = Annotated[int, typer.Argument(help="Contact id.")]
# Rejected rows (and values not imported) shown in human output; the JSON and the --report CSV have all of them.
SHOWN_REJECTS = 20


def _key_values(options: list[str] | None, flag: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for option in options or []:
        key, sep, value = option.partition("=")
        if not sep or not key.strip():
            raise ValidationError(flag, f"{option!r} is not KEY=VALUE")
        pairs[key.strip()] = value
    return pairs


def _import_text(data: dict, report: Path | None) -> str:
    lines = [("DRY RUN (nothing written) " if data["dry_run"] else "") + f"import of {data['file']} into campaign {data['campaign_id']}",
             "mapping:"]
    lines += [f"  {source} -> {target}" for source, target in data["mapping"].items()]
    lines.append(
        f"rows {data['rows']}, imported {data['imported']}, updated {data['updated']}, enrolled {data['enrolled']}, "
        f"duplicates merged {data['duplicates_merged']}, invalid {data['invalid']}, "
        f"without a bad value {data['warned']}"
    )
    for key, heading in (("rejected", "rejected:"), ("warnings", "imported without these values (a contact already in the CRM keeps its own):")):
        if data[key]:
            lines.append(heading)
            lines.append(table(data[key][:SHOWN_REJECTS], ["row", "column", "value", "reason"]))
            if len(data[key]) > SHOWN_REJECTS:
                lines.append(f"… {len(data[key]) - SHOWN_REJECTS} more" + ("" if report else " (use --report F.csv or --json)"))
    if report:
        lines.append(f"report written to {report}")
    return "\n".join(lines)


@app.command("import")
def import_(
    campaign_id: CampaignArg,
    file: Annotated[Path, typer.Argument(help="Contacts file: .csv (any of , ; tab) or .xlsx.")],
    map_: Annotated[list[str] | None, typer.Option(
        "--map", help="SOURCE=TARGET, TARGET one of contact_phone, contact_name, company_name, email, "
                      "custom:<name>, ignore; repeat.")] = None,
    default_country: Annotated[str | None, typer.Option(
        "--default-country", help="ISO alpha-2 for numbers without +country code when the campaign has no country.")] = None,
    sheet: Annotated[str | None, typer.Option("--sheet", help="XLSX sheet name (default: the first).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Do everything, then roll back: counts only.")] = False,
    report: Annotated[Path | None, typer.Option(
        "--report", help="Write every rejected row and every value not imported to this CSV "
                         "(its column outcome: rejected or imported).")] = None,
    prefect: Annotated[bool, typer.Option("--prefect", help="Run as the Prefect flow import_contacts (slower start).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Import contacts into the CRM and enroll them in a campaign: every valid row or nothing."""
    from tasks.contacts_import import parse_map_options

    overrides = parse_map_options(map_ or [])
    check_country_option(default_country, "--default-country")
    check_not_a_folder(file, "contacts file (.csv or .xlsx)")
    check_sheet_option(sheet, file)
    if report is not None:  # before the file is read: a mistyped --report waited for a whole import's work
        from flows.import_contacts import kept_files
        from tasks.contacts_import import check_report_path

        check_report_path(report, kept_files(db(), file))
    with options_named({"mapping": "--map"}):  # a bad --map target: the option, not the field
        data = _run_import(campaign_id, file, overrides, default_country, sheet, dry_run, report, prefect)
    emit(data, as_json, _import_text(data, report))
    nothing_valid(data)


def _run_import(campaign_id: int, file: Path, overrides: dict[str, str], default_country: str | None,
                sheet: str | None, dry_run: bool, report: Path | None, prefect: bool) -> dict:
    """The import's result, from the plain function or the Prefect flow."""
    if prefect:
        from flows.import_contacts import check_import, file_already_read, import_contacts

        # Checked before the flow starts (Prefect would log a bad input's traceback on the terminal); the
        # flow then imports the file as read here instead of reading it a second time.
        checked = check_import(campaign_id, file, mapping=overrides, default_country=default_country, sheet=sheet,
                               db=db(), report_path=report)
        with file_already_read(file, sheet, checked):
            del checked  # the flow's read step takes the only reference: freed as the import moves on
            state = import_contacts(campaign_id, str(file), mapping=overrides, default_country=default_country,
                                    sheet=sheet, dry_run=dry_run, db=str(db()),
                                    report_path=None if report is None else str(report), return_state=True)
            # Failed when every row was rejected (the report still comes, then the error line); a crash raises
            data = state.result(raise_on_failure=False)
            if isinstance(data, BaseException):
                raise data
        return data
    from flows.import_contacts import run_import

    return run_import(campaign_id, file, mapping=overrides, default_country=default_country, sheet=sheet,
                      dry_run=dry_run, db=db(), report_path=report).to_dict()


def nothing_valid(data: dict) -> None:
    """A file whose every row was rejected is bad input (exit 2) even though the report above lists why: a
    script that imports a wrong file (another sheet, a phone column mapped wrong) must not read it as done."""
    from tasks.contacts_import import every_row_rejected
    from tasks.errors import UserError

    if every_row_rejected(data):
        first = data["rejected"][0]
        raise UserError(f"{Path(data['file']).name}: every row was rejected ({data['invalid']} of {data['rows']}), "
                        f"nothing imported; first: row {first['row']}, column {first['column']}: {first['reason']}")


@contacts_app.command("remove")
def remove(campaign_id: CampaignArg, contact_id: ContactArg, as_json: JsonOpt = False) -> None:
    """Remove a contact from a campaign; the CRM contact and its past calls stay."""
    from tasks.contacts_import import remove_contact_from_campaign
    from tasks.store import transaction

    with transaction(db()) as conn:
        remove_contact_from_campaign(conn, campaign_id, contact_id)
    emit({"campaign_id": campaign_id, "contact_id": contact_id, "removed": True}, as_json,
         f"removed contact {contact_id} from campaign {campaign_id} (still in the CRM)")


@contacts_app.command("edit")
def edit(
    contact_id: ContactArg,
    name: Annotated[str | None, typer.Option("--name", help="Contact name ('' clears it).")] = None,
    phone: Annotated[str | None, typer.Option("--phone", help="New phone; validated and stored as E.164.")] = None,
    company: Annotated[str | None, typer.Option("--company", help="Company name ('' clears it).")] = None,
    email: Annotated[str | None, typer.Option("--email", help="E-mail ('' clears it).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Custom property key=value ('key=' removes it); repeat.")] = None,
    default_country: Annotated[str | None, typer.Option(
        "--default-country", help="Country of a national --phone (default: the contact's current region).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Edit a CRM contact's fields and custom properties."""
    from tasks.contacts_import import edit_contact
    from tasks.store import transaction

    changes: dict[str, str | None] = {
        k: v for k, v in {"name": name, "phone": phone, "company": company, "email": email}.items() if v is not None
    }
    changes.update({f"custom:{k}": v for k, v in _key_values(set_, "--set").items()})
    if not changes:
        raise ValidationError("edit", "nothing to change: give --name, --phone, --company, --email or --set key=value")
    check_country_option(default_country, "--default-country")
    # the options given, by the fields the task names (a --set key keeps its own name: `plan: longer than ...`)
    given = {field: f"--{field}" for field in changes if not field.startswith("custom:")}
    with options_named({**given, **({"property": "--set"} if set_ else {})}), transaction(db()) as conn:
        contact = edit_contact(conn, contact_id, changes, datetime.now(UTC), default_country)
    emit(contact, as_json, "\n".join(f"{k}: {plain_value(v)}" for k, v in contact.items()))


@export_app.command("contacts")
def export_contacts_cmd(
    campaign_id: CampaignArg,
    out: Annotated[Path, typer.Option("--out", help="The .xlsx file to write.")],
    as_json: JsonOpt = False,
) -> None:
    """Export a campaign's contact list (every field and custom property) to .xlsx."""
    from tasks.contacts_import import export_contacts
    from tasks.store import connect

    check_out_file(out, ".xlsx")
    with connect(db()) as conn:
        path = export_contacts(conn, campaign_id, out)
    emit({"campaign_id": campaign_id, "out": str(path)}, as_json, f"wrote {path}")
