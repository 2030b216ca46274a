"""Compliance commands: do-not-call lists, the legal calling rules, the claim audit, callee time zones."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer

from flows.cli.common import (JsonOpt, app, check_country_option, check_not_a_folder, check_sheet_option, db, emit,
                              options_named, require_campaign, table)

dnc_app = typer.Typer(help="Do-not-call lists (global, or per campaign with --campaign).", no_args_is_help=True)
rules_app = typer.Typer(help="Legal calling rules by callee country/state, and what they held back.", no_args_is_help=True)
app.add_typer(dnc_app, name="dnc")
app.add_typer(rules_app, name="rules")

CampaignOpt = Annotated[int | None, typer.Option("--campaign", help="A campaign's own list (default: the global list).")]
CountryOpt = Annotated[str | None, typer.Option(
    "--country", help="ISO alpha-2 for numbers written without +country code (default with --campaign: its country).")]
ReasonOpt = Annotated[str | None, typer.Option("--reason", help="Why (kept with the entry).")]


def list_region(conn, campaign_id: int | None, region: str | None) -> str | None:
    """The country national numbers are read in: --country, else the campaign's own (its list), else none."""
    from tasks.campaigns import get_campaign

    if region is not None or campaign_id is None:
        return region
    return get_campaign(conn, campaign_id)["country"]  # refuses an unknown campaign


@dnc_app.command("add")
def dnc_add(
    numbers: Annotated[list[str], typer.Argument(help="Numbers (any format) or wildcards such as +1305*.")],
    campaign: CampaignOpt = None,
    reason: ReasonOpt = None,
    country: CountryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add numbers or area-code wildcards to a do-not-call list (takes effect at the next claim)."""
    from tasks.compliance import add_dnc
    from tasks.store import transaction

    region = check_country_option(country, "--country")

    with transaction(db()) as conn:
        added = add_dnc(conn, numbers, datetime.now(UTC), campaign_id=campaign, reason=reason,
                        default_region=list_region(conn, campaign, region))
    emit({"added": added, "already_listed": len(numbers) - added}, as_json,
         f"added {added}" + (f" ({len(numbers) - added} already listed)" if added < len(numbers) else ""))


@dnc_app.command("remove")
def dnc_remove(
    number: Annotated[str, typer.Argument(help="The number or wildcard as added.")],
    campaign: CampaignOpt = None,
    country: CountryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove one entry from a do-not-call list."""
    from tasks.compliance import remove_dnc
    from tasks.errors import NotFoundError
    from tasks.store import transaction

    region = check_country_option(country, "--country")

    with transaction(db()) as conn:
        if campaign is not None:
            require_campaign(conn, campaign)
        removed = remove_dnc(conn, number, campaign_id=campaign, default_region=list_region(conn, campaign, region))
    if not removed:
        raise NotFoundError(f"{number} is not on the {'campaign ' + str(campaign) if campaign else 'global'} list")
    emit({"removed": removed}, as_json, f"removed {number}")


@dnc_app.command("import")
def dnc_import(
    file: Annotated[Path, typer.Argument(help="CSV/XLSX: its phone/number column, else its first column; "
                                              "a Reason column gives each row's reason.")],
    campaign: CampaignOpt = None,
    reason: Annotated[str | None, typer.Option(
        "--reason", help="Why, for rows without a Reason cell (kept with the entry).")] = None,
    country: CountryOpt = None,
    sheet: Annotated[str | None, typer.Option("--sheet", help="XLSX sheet name (default: the first).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add every number of a file to a do-not-call list: all rows or none."""
    from tasks.compliance import import_dnc_counts
    from tasks.store import transaction

    region = check_country_option(country, "--country")
    check_not_a_folder(file, "CSV/XLSX file")
    check_sheet_option(sheet, file)

    with transaction(db()) as conn:
        counts = import_dnc_counts(conn, file, datetime.now(UTC), campaign_id=campaign, reason=reason,
                                   default_region=list_region(conn, campaign, region), sheet=sheet)
    listed = counts["already_listed"]
    emit(counts, as_json, f"added {counts['added']} from {file}" + (f" ({listed} already listed)" if listed else ""))


@dnc_app.command("list")
def dnc_list(
    campaign: CampaignOpt = None,
    all_lists: Annotated[bool, typer.Option("--all", help="Every list, global and per campaign.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show a do-not-call list."""
    from tasks.compliance import list_dnc
    from tasks.errors import UserError
    from tasks.store import connect

    if campaign is not None and all_lists:
        raise UserError("give --campaign ID (that campaign's list) or --all (every list), not both")
    with connect(db()) as conn:
        if campaign is not None:
            require_campaign(conn, campaign)
        rows = list_dnc(conn, campaign, all_lists=all_lists)
    emit(rows, as_json, table(rows, ["pattern", "campaign_id", "reason", "source", "added_at"]))


@dnc_app.command("suppressed")
def dnc_suppressed(
    campaign_id: Annotated[int, typer.Argument(help="Campaign id.")],
    as_json: JsonOpt = False,
) -> None:
    """A campaign's contacts that are on a do-not-call list or whose time zone is unknown, with why."""
    from tasks.compliance import suppressed_contacts
    from tasks.store import connect

    with connect(db()) as conn:
        require_campaign(conn, campaign_id)
        rows = suppressed_contacts(conn, campaign_id).to_dicts()
    emit(rows, as_json, table(rows, ["contact_id", "phone_e164", "do_not_call", "dnc_list", "dnc_reason", "time_zone_unknown"]))


@rules_app.command("list")
def rules_list(as_json: JsonOpt = False) -> None:
    """The legal calling rules in force (callee-local windows, holidays, caps, source)."""
    from tasks.compliance import list_rules
    from tasks.store import connect

    with connect(db()) as conn:
        rows = list_rules(conn)
    shown = [{**row, "hours": week_hours(row)} for row in rows]
    emit(rows, as_json, table(shown, ["rule_id", "country", "subdivision", "hours", "no_public_holidays",
                                      "max_calls_24h", "max_calls_30d"]))


def week_hours(rule: dict) -> str:
    """A rule's seven days in one cell, runs of days with the same windows together:
    "mon-fri 08:00-21:00; sat 10:00-13:00 14:00-20:00; sun none"."""
    from schemas.enums import WEEKDAYS

    runs: list[list] = []  # [first day, last day, windows]
    for day in WEEKDAYS:
        windows = (rule.get(day) or "").strip() or "none"
        if runs and runs[-1][2] == windows:
            runs[-1][1] = day
        else:
            runs.append([day, day, windows])
    return "; ".join(f"{first if first == last else f'{first}-{last}'} {windows}" for first, last, windows in runs)


@rules_app.command("import")
def rules_import(
    file: Annotated[Path, typer.Argument(help="A CSV shaped like data/calling_rules.csv.")],
    as_json: JsonOpt = False,
) -> None:
    """Replace the calling rules with a CSV's rows (checked first: a bad row changes nothing)."""
    from tasks.compliance import read_rules_csv, replace_rules
    from tasks.store import transaction

    rules = read_rules_csv(file)
    with transaction(db()) as conn:
        count = replace_rules(conn, rules, datetime.now(UTC))
    emit({"rules": count}, as_json, f"{count} rules in force")


def _since(text: str, time_zone: str) -> datetime:
    """--since as an instant: a date is the start of that day in the campaign's zone, a date-time as --now reads it."""
    from flows.cli.dialing_cmds import parse_instant
    from tasks.errors import UserError
    from tasks.metrics import local_day_bounds

    try:
        day = date.fromisoformat(text)
    except ValueError:
        try:
            return parse_instant(text, "--since")
        except UserError:
            raise UserError(f"--since: '{text}' is not an ISO date or date-time "
                            "(e.g. 2026-04-28 or 2026-04-28T17:00:00Z)") from None
    return local_day_bounds(day, time_zone)[0]


@rules_app.command("audit")
def rules_audit(
    campaign_id: Annotated[int, typer.Argument(help="Campaign id.")],
    since: Annotated[str | None, typer.Option(
        "--since", help="Only claims from then on: a date (its start in the campaign's zone) or an ISO date-time.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Per rule, how many claims held contacts back, how many in total, and a few of them."""
    from tasks.campaigns import get_campaign
    from tasks.compliance import audit_summary
    from tasks.store import connect

    with connect(db()) as conn:
        time_zone = get_campaign(conn, campaign_id)["time_zone"]
        rows = audit_summary(conn, campaign_id, None if since is None else _since(since, time_zone)).to_dicts()
    shown = [{**row, "sample_contact_ids": ", ".join(map(str, row["sample_contact_ids"]))} for row in rows]
    emit(rows, as_json, table(shown, ["rule", "claims", "skipped", "last_at", "sample_contact_ids"]))


def known_states(country: str | None) -> list[str]:
    """The state/province codes of a country, as contacts carry them (FL, not US-FL): the `holidays` package's
    subdivisions, else pycountry's ISO 3166-2 ones when it is installed; [] when neither knows the country's."""
    import holidays

    if not country:
        return []
    known = list(holidays.list_supported_countries().get(country, []))
    if known:
        return known
    try:
        import pycountry
    except ImportError:
        return []
    found = pycountry.subdivisions.get(country_code=country) or []
    return sorted(sub.code.removeprefix(f"{country}-") for sub in found)


def _check_state(conn, contact_id: int, state: str) -> None:
    """Refuse a --state that is not a subdivision of the contact's country, where its subdivisions are known
    (ZZZ would match no rule, silently)."""
    from tasks.contacts_import import get_contact
    from tasks.errors import ValidationError

    region = get_contact(conn, contact_id)["region"]
    known = known_states(region)
    code = state.strip().upper()
    if known and code not in known:
        raise ValidationError("--state", f"{state!r} is not a state/province code of {region} (e.g. {known[0]})")
    if not known and not re.fullmatch(r"[A-Z0-9]{1,3}", code):  # a name ("Jalisco"), or MX-JAL for JAL
        raise ValidationError("--state", f"{state!r} is not a state/province code of {region or 'any country'} "
                                         "(its ISO 3166-2 code without the country: 1 to 3 letters or digits)")


def _register_contact_zone() -> None:
    """`campaigns contacts zone`: beside the other contact commands when they are installed."""
    try:
        from flows.cli.contact_cmds import contacts_app
    except ModuleNotFoundError:
        return

    @contacts_app.command("zone")
    def contact_zone(
        contact_id: Annotated[int, typer.Argument(help="Contact id.")],
        time_zone: Annotated[str | None, typer.Option("--time-zone", help="IANA zone, e.g. America/Chicago; '' clears.")] = None,
        state: Annotated[str | None, typer.Option("--state", help="State/province code, e.g. FL; '' clears.")] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Override by hand the time zone and/or state a contact is called by."""
        from tasks.compliance import set_contact_zone
        from tasks.store import transaction

        with options_named({"time_zone": "--time-zone"}), transaction(db()) as conn:
            if state and state.strip():
                _check_state(conn, contact_id, state)
            set_contact_zone(conn, contact_id, datetime.now(UTC), time_zone=time_zone, subdivision=state)
            row = conn.execute(
                "select z.time_zones, z.country, z.subdivision, z.zone_source from contacts c"
                " join zone_keys z using (zone_key) where c.contact_id = ?", [contact_id]).fetchone()
        data = {"contact_id": contact_id, "time_zones": row[0], "country": row[1], "subdivision": row[2], "source": row[3]}
        emit(data, as_json, f"contact {contact_id}: called in {', '.join(row[0] or ['the campaign zone'])}"
                            f" ({row[1] or '?'}{'-' + row[2] if row[2] else ''}, {row[3]})")


_register_contact_zone()
