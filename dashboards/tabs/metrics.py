"""The Metrics tab: a date range, five KPI cards, the Calls Made chart, the contact funnel and the best time to call."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import altair as alt
import polars as pl
import streamlit as st

from dashboards import state
from dashboards.components import format_credits, format_duration, format_local, reason_labels
from dashboards.queries import metrics as q
from dashboards.queries import smart


def _key(campaign_id: int, name: str) -> str:
    return f"metrics_{campaign_id}_{name}"


LEGEND_COLUMNS = 4
# The KPI cards' values a little smaller than st.metric's 2.25rem: five cards share a 1280 px row (about 119 px of
# text each with st.metric's sides, 129 px with these) and "59m 59s" or "23h 59m" needs 124-128 px at 2.25rem (they
# then wrap onto a second line). Their sides are 0.6rem rather than 15 px: "Avg. Call Duration" and its help icon
# need 125 px, and ran into each other (then, once labels wrapped, took two lines and set that card's value lower
# than the other four).
KPI_CSS = ("<style>.st-key-{key} [data-testid='stMetricValue'] {{font-size:2rem;}}"
           " .st-key-{key} [data-testid='stMetric'] > div {{padding-left:0.6rem; padding-right:0.6rem;}}</style>")
# Funnel bars light enough for the dark labels: at least 7:1 on every bar (WCAG asks 4.5:1), and 17.7:1 on the
# page where a label runs past a narrow bar. On #1d4ed8 they were 2.6:1; white labels there would vanish past it.
FUNNEL_COLOURS = ["#bfdbfe", "#93c5fd", "#60a5fa"]
FUNNEL_LABEL_COLOUR = "#111827"
# The stage names beside the bars: the theme's grey axis labels are below 4.5:1 on white; gray-700 is 10:1.
FUNNEL_STAGE_COLOUR = "#374151"
# Why Total Calls can be below the Call Logs' count (tasks/metrics.py keeps the definition; the caption under the
# cards gives the range's figures).
TOTAL_CALLS_HELP = ("Call attempts in the date range. Call Logs also lists calls that never rang, which are not "
                    "attempts: refused at the rate or concurrency limit, not placed while the telephony provider was "
                    "unavailable, or never handed to it (the batch stopped, or the number was put on a "
                    "do-not-call list after the claim).")


def format_card_duration(seconds: float | int | None) -> str:
    """Seconds as a KPI card shows them: "45s", "1m 42s", or "1h 05m" (to the nearest minute); blank when unknown.

    Shorter than the tables' `format_duration` ("1 min, 42 sec" does not fit a fifth of a 1280 px row); the card's
    help gives the tables' text.
    """
    if seconds is None:
        return ""
    rest = int(round(seconds))
    if rest < 60:
        return f"{rest}s"
    if rest < 3600:
        return f"{rest // 60}m {rest % 60:02d}s"
    hours, minutes = divmod((rest + 30) // 60, 60)
    return f"{hours}h {minutes:02d}m"


def not_charted_note(missing: int, aggregated_at: datetime | None, time_zone: str, now: datetime) -> str | None:
    """What the Calls Made chart says when the live KPI cards count `missing` calls it has not got yet (None: none).

    The chart reads `metrics_daily`, as of the last aggregation run: a fresh batch is on the cards at once and
    in the chart after the next run. The time is in the campaign's zone, with the date unless it is today.
    """
    if missing <= 0:
        return None
    calls = f"{missing:,} {'call' if missing == 1 else 'calls'}"
    verb = "is" if missing == 1 else "are"
    if aggregated_at is None:
        return (f"{calls} {verb} not in the chart yet: it shows the calls as of the metrics aggregation, which has "
                "not run over this campaign yet (the cards above count every call now).")
    zone = ZoneInfo(time_zone)
    local = aggregated_at.astimezone(zone)
    when = f"{local:%I:%M %p}" if local.date() == now.astimezone(zone).date() else format_local(aggregated_at, time_zone)
    return (f"{calls} since the last aggregation ({when}) {verb} not in the chart yet: it shows the calls as of "
            "each aggregation run, the cards above count every call now.")


def calls_made_chart(series: pl.DataFrame) -> alt.LayerChart:
    """Calls per day, one line per reason; hovering a day lists every reason, the legend toggles lines.

    `series` has every day of its span of calls (`queries.metrics.calls_made`): days without calls draw 0.
    """
    hover = alt.selection_point(fields=["day"], nearest=True, on="pointerover", empty=False)
    # a reason absent on a day is 0 calls that day: lines drop to 0 and the breakdown shows 0, not NaN
    # the legend and the tooltip name reasons by their labels ("User Hangup"), as every table does
    data = (series.with_columns(reason_labels("reason"))
            .pivot(on="reason", index="day", values="calls").fill_null(0)
            .unpivot(index="day", variable_name="reason", value_name="calls")
            .with_columns(pl.col("day").cast(pl.String)))
    reasons = sorted(data["reason"].unique().to_list())
    # a click on a legend entry hides its line and another click shows it again: the selection is the lines shown,
    # every reason at first, and every click toggles its entry (a double click does not clear it: that hid them all).
    # A plain legend selection kept only the line clicked and faded the other 18, and clicking it again changed nothing
    shown = alt.selection_point(fields=["reason"], bind="legend", toggle="true", clear=False, empty=False,
                                value=[{"reason": reason} for reason in reasons])
    base = alt.Chart(data).encode(
        x=alt.X("utcyearmonthdate(day):T", title="Day", axis=alt.Axis(format="%b %d", tickCount="day", labelAngle=0)))
    lines = base.mark_line(point=True).encode(
        y=alt.Y("calls:Q", title="Calls", axis=alt.Axis(format="d", tickMinStep=1)),
        # below the plot, in columns: a legend beside it was cut off after ~11 reasons (the rest could not be
        # toggled), and 20 distinct colours so no two of the 19 reasons share one
        color=alt.Color("reason:N", title="Disconnect reason", scale=alt.Scale(scheme="tableau20"),
                        legend=alt.Legend(orient="bottom", columns=LEGEND_COLUMNS, symbolLimit=0, labelLimit=0)),
        opacity=alt.condition(shown, alt.value(1.0), alt.value(0.0)),
    ).add_params(shown)
    breakdown = base.transform_pivot("reason", value="calls", groupby=["day"]).mark_rule(color="#9ca3af").encode(
        opacity=alt.condition(hover, alt.value(0.6), alt.value(0)),
        tooltip=[alt.Tooltip("utcyearmonthdate(day):T", title="Day", format="%b %d, %Y")] + [alt.Tooltip(f"{r}:Q", title=r) for r in reasons],
    ).add_params(hover)
    # the legend below takes its rows out of the chart's height: add them so the plot keeps its 340 px
    legend_rows = -(-len(reasons) // LEGEND_COLUMNS)
    return alt.layer(lines, breakdown).properties(height=340 + 40 + 21 * legend_rows)


def funnel_chart(frame: pl.DataFrame) -> alt.LayerChart:
    """Total → Connected → Successful as centred horizontal bars (a funnel), labelled with % of total."""
    base = alt.Chart(frame).transform_calculate(left="-datum.contacts / 2", right="datum.contacts / 2").encode(
        y=alt.Y("stage:N", sort=alt.EncodingSortField("order"), title=None,
                axis=alt.Axis(labelFontSize=13, labelColor=FUNNEL_STAGE_COLOUR)),
    )
    bars = base.mark_bar(cornerRadius=4, height=44).encode(
        x=alt.X("left:Q", axis=None), x2="right:Q",
        color=alt.Color("stage:N", legend=None, sort=alt.EncodingSortField("order"),
                        scale=alt.Scale(range=FUNNEL_COLOURS)),
        tooltip=["stage:N", alt.Tooltip("contacts:Q", format=","), alt.Tooltip("pct:Q", title="% of total")],
    )
    labels = base.mark_text(fontSize=13, fontWeight="bold", color=FUNNEL_LABEL_COLOUR).encode(
        x=alt.datum(0), text="label:N",
    )
    return alt.layer(bars, labels).properties(height=200)


def best_time_chart(cells: pl.DataFrame) -> alt.LayerChart:
    """Connection rate by callee-local weekday × hour: unseen cells grey, cells with few calls faded and dotted."""
    data = cells.with_columns(
        pl.when(pl.col("calls") == 0).then(pl.lit("no calls yet"))
        .when(pl.col("few_calls")).then(pl.lit(f"fewer than {smart.MIN_CELL_CALLS} calls: rate not reliable yet"))
        .otherwise(pl.lit("")).alias("note"),
        pl.when(pl.col("calls") > 0).then(pl.format("{}%", pl.col("rate_pct").round(0).cast(pl.Int64)))
        .otherwise(pl.lit("")).alias("label"),
    ).select("day", "hour_label", "calls", "connected", "rate_pct", "few_calls", "note", "label")
    base = alt.Chart(data).encode(
        x=alt.X("hour_label:O", title="Callee-local hour", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("day:O", title=None, sort=list(smart.DAY_LABELS)),
        tooltip=[alt.Tooltip("day:N", title="Day"), alt.Tooltip("hour_label:N", title="Hour"),
                 alt.Tooltip("calls:Q", title="Calls", format=","),
                 alt.Tooltip("connected:Q", title="Connected", format=","),
                 alt.Tooltip("rate_pct:Q", title="Connection rate %"), alt.Tooltip("note:N", title="Note")],
    )
    empty = base.mark_rect(color="#f3f4f6", stroke="#ffffff", strokeWidth=1)
    seen = base.transform_filter("datum.calls > 0").mark_rect(stroke="#ffffff", strokeWidth=1).encode(
        color=alt.Color("rate_pct:Q", title="Connection rate %", scale=alt.Scale(scheme="blues", domain=[0, 100])),
        opacity=alt.condition("datum.few_calls", alt.value(0.35), alt.value(1.0)),
        strokeDash=alt.condition("datum.few_calls", alt.value([2, 2]), alt.value([1, 0])),
    )
    labels = base.transform_filter("datum.calls > 0").mark_text(fontSize=10).encode(
        text="label:N",
        color=alt.condition("datum.rate_pct > 55 && !datum.few_calls", alt.value("#ffffff"), alt.value("#374151")),
    )
    return alt.layer(empty, seen, labels).properties(height=260)


def best_time_section(campaign_id: int) -> None:
    """Best Time to Call: the heatmap of the campaign's whole history, with its notes."""
    st.subheader("Best Time to Call")
    with state.reading() as conn:
        cells = smart.best_time_cells(conn, campaign_id)
        updated_at = smart.best_time_updated_at(conn, campaign_id)
        time_zone = smart.campaign_zone(conn, campaign_id)
    seen = cells.filter(pl.col("calls") > 0)
    if seen.is_empty():
        st.info("No finished calls yet: the connection rate by hour and weekday appears after the first calls "
                "are aggregated.", icon=":material/schedule:")
        return
    st.caption(f"Connection rate of every call of the campaign (not only the date range above) by the contact's "
               f"local weekday and hour, as of {format_local(updated_at, time_zone)} ({time_zone}). Hover a cell for "
               f"its counts.")
    st.altair_chart(best_time_chart(cells), width="stretch")
    best = smart.best_cells(cells)
    if not best.is_empty():
        st.caption("Best hours so far: " + "; ".join(
            f"{row['day']} {row['hour_label']} ({row['rate_pct']:g}% of {row['calls']:,} calls)"
            for row in best.iter_rows(named=True)))
    few = seen.filter(pl.col("few_calls")).height
    if few:
        st.caption(f"{few} of {seen.height} hours with calls have fewer than {smart.MIN_CELL_CALLS} calls "
                   "(faded, dotted): their rate is not reliable yet.")


def render(campaign_id: int) -> None:
    """Draw the Metrics tab of one campaign."""
    with state.reading() as conn:
        default_from, default_to = q.default_range(conn, campaign_id, state.now())
    picker, _ = st.columns([1, 2])
    days = picker.date_input("Date range", value=(default_from, default_to), key=_key(campaign_id, "dates"),
                             format="YYYY-MM-DD")
    if len(days) != 2:
        st.caption("Pick the last day of the range.")
        return
    date_from, date_to = days
    with state.reading() as conn:
        kpis, funnel = q.kpis_and_funnel(conn, campaign_id, date_from, date_to)
        not_counted = q.calls_not_counted(conn, campaign_id, date_from, date_to)
        series = q.calls_made(conn, campaign_id, date_from, date_to)
        # the chart is as of the last aggregation, the cards are live: say what the chart does not have yet
        lag_note = not_charted_note(kpis["total_calls"] - int(series["calls"].sum()), q.aggregated_at(conn, campaign_id),
                                    smart.campaign_zone(conn, campaign_id), state.now())

    st.html(KPI_CSS.format(key=_key(campaign_id, "kpis")))
    cards = st.container(key=_key(campaign_id, "kpis")).columns(5)
    cards[0].metric("Credits Used", format_credits(kpis["credits_used"]), border=True, height="stretch")
    cards[1].metric("Total Calls", f"{kpis['total_calls']:,}", border=True, height="stretch", help=TOTAL_CALLS_HELP)
    cards[2].metric("Contacts Called", f"{kpis['contacts_called']:,}", border=True, height="stretch")
    # two decimals always: ":g" wrote 65.7% beside another range's 22.01%
    cards[3].metric("Connection Rate", f"{kpis['connection_rate']:.2f}%", border=True, height="stretch",
                    help="Contacts who answered ÷ total contacts × 100")
    avg_duration = kpis["avg_call_duration_seconds"] or 0
    cards[4].metric("Avg. Call Duration", format_card_duration(avg_duration), border=True, height="stretch",
                    help=f"Average length of connected calls: {format_duration(avg_duration)}")
    note = q.not_counted_note(kpis["total_calls"], not_counted)
    if note:
        st.caption(note)

    st.subheader("Calls Made")
    if series.is_empty():
        st.info(lag_note or "No calls in this date range.")
    else:
        st.caption("Hover a day for the breakdown by disconnect reason; click a legend entry to hide or show its line.")
        st.altair_chart(calls_made_chart(series), width="stretch")
        if lag_note:
            st.caption(lag_note)

    st.subheader("Contact Funnel")
    if funnel["total_contacts"] == 0:
        st.info("No contacts in this campaign yet: import contacts in the Contact List tab to see the funnel.")
    else:
        st.altair_chart(funnel_chart(q.funnel_frame(funnel)), width="stretch")
    for hint in funnel["hints"]:
        st.warning(hint, icon=":material/lightbulb:")

    best_time_section(campaign_id)
