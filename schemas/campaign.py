"""The campaign settings model: the single place where a campaign's settings are validated."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticCustomError

from schemas.enums import WEEKDAY_NAMES, WEEKDAYS
from tasks.errors import UserError, ValidationError
from tasks.timezones import countries_for_zone, is_known_zone

_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_DAY_ALIASES = {
    **{d: d for d in WEEKDAYS},
    **{name.lower(): d for name, d in zip(WEEKDAY_NAMES, WEEKDAYS)},
}
_SCHEDULE_CONFLICT = "weekly_schedule_conflict"
NAME_MAX_LENGTH = 200
SETTING_FIELDS = (
    "name", "objective", "agent_id", "start_date", "end_date", "time_zone", "country", "calling_days",
    "weekly_schedule", "max_attempts", "attempts_per_day", "batch_size", "rotation_enabled",
    "outbound_number_ids", "active",
    "retry_policy", "smart_ordering", "exploration_share", "number_daily_cap",  # smart dialing
)


def _minutes(text: str, *, end: bool) -> int:
    """Minutes since local midnight of an HH:MM time ("24:00" allowed as an end: until midnight)."""
    if end and text == "24:00":
        return 24 * 60
    match = _TIME.match(text)
    if not match:
        raise ValueError(f'"{text}" is not a time in HH:MM (00:00..23:59)')
    return int(match.group(1)) * 60 + int(match.group(2))


def _window(raw: Any, where: str) -> list[str]:
    """One [start, end) window as ["HH:MM", "HH:MM"], checked."""
    if isinstance(raw, str) and "-" in raw:  # "08:00-18:00" is accepted as well as a pair
        raw = [part.strip() for part in raw.split("-", 1)]
    if not isinstance(raw, (list, tuple)) or len(raw) != 2:
        raise ValueError(f'{where}: a window is a pair ["HH:MM", "HH:MM"], got {raw!r}')
    for value in raw:
        if isinstance(value, int) and not isinstance(value, bool):
            # YAML 1.1 reads an unquoted 18:00 as the number 1080.
            raise ValueError(f'{where}: times must be quoted text like "18:00", got the number {value}')
        if not isinstance(value, str):
            raise ValueError(f'{where}: times must be text like "08:00", got {value!r}')
    start, end = raw[0].strip(), raw[1].strip()
    try:
        start_min, end_min = _minutes(start, end=False), _minutes(end, end=True)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None
    if start_min >= end_min:
        raise ValueError(f"{where}: window {start}-{end} ends before it starts (start must be before end)")
    return [start, end]


def expand_same_hours(calling_days: list[str], hours: Any) -> dict[str, Any]:
    """The weekly schedule giving every calling day the same windows (the "same hours" shorthand)."""
    return {day: hours for day in calling_days}


class CampaignSettings(BaseModel):
    """Every setting of a campaign, validated; fields are declared in dependency order."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, validate_assignment=False)

    name: str = Field(min_length=1, max_length=NAME_MAX_LENGTH)
    objective: str | None = Field(default=None, max_length=2000)
    agent_id: int
    start_date: date | None = None
    end_date: date | None = None
    time_zone: str
    country: str | None = Field(default=None, validate_default=True)
    calling_days: list[str] = Field(default_factory=lambda: list(WEEKDAYS[:5]))
    weekly_schedule: dict[str, list[list[str]]]
    max_attempts: int = Field(default=3, ge=1, le=20)
    attempts_per_day: int = Field(default=1, ge=1)
    batch_size: int = Field(default=100, ge=1, le=500)
    rotation_enabled: bool = False
    outbound_number_ids: list[int] = Field(default_factory=list)
    active: bool = False
    # Smart dialing (tasks/retry_policy.py, tasks/best_time.py, tasks/number_health.py).
    retry_policy: dict[str, str] | None = None
    smart_ordering: bool = False
    exploration_share: float = Field(default=0.2, ge=0, le=1)
    number_daily_cap: int | None = Field(default=100, ge=1, le=10_000)

    @model_validator(mode="before")
    @classmethod
    def _same_hours_shorthand(cls, data: Any) -> Any:
        """`same_hours` (or `hours`) expands to every calling day; it cannot be combined with a schedule."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        shorthand = [key for key in ("same_hours", "hours") if key in data]
        if shorthand:
            hours = data.pop(shorthand[0])
            for other in shorthand[1:]:
                data.pop(other)
            if data.get("weekly_schedule") is not None:
                raise PydanticCustomError(_SCHEDULE_CONFLICT, "give either weekly_schedule or same_hours (hours), not both")
            try:
                days = _normalise_days(list(data.get("calling_days", WEEKDAYS[:5])))
            except (TypeError, ValueError):  # calling_days reports its own error
                days = []
            data["weekly_schedule"] = expand_same_hours(days, hours)
        return data

    @field_validator("agent_id", "max_attempts", "attempts_per_day", "batch_size", "exploration_share",
                     "number_daily_cap", "outbound_number_ids", mode="before")
    @classmethod
    def _numbers_not_booleans(cls, value: Any) -> Any:
        # pydantic reads True as 1; YAML reads yes/no/on/off/true/false as booleans
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, bool):
                raise ValueError(f"expected a number, got the yes/no value {str(item).lower()}")
        return value

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, value: str) -> str:
        if not value:
            raise ValueError("is required")
        return value

    @field_validator("objective")
    @classmethod
    def _objective_blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("end_date")
    @classmethod
    def _end_not_before_start(cls, value: date | None, info: ValidationInfo) -> date | None:
        start = info.data.get("start_date")
        if value is not None and start is not None and value < start:
            raise ValueError(f"end date {value} is before the start date {start}")
        return value

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if not is_known_zone(value):
            raise ValueError(f'unknown time zone "{value}" (use an IANA name such as America/Phoenix)')
        return value

    @field_validator("country", mode="before")
    @classmethod
    def _country_upper(cls, value: Any) -> Any:
        return value.strip().upper() or None if isinstance(value, str) else value

    @field_validator("country")
    @classmethod
    def _country_fits_zone(cls, value: str | None, info: ValidationInfo) -> str | None:
        zone = info.data.get("time_zone")
        if zone is None:  # the zone itself is invalid; that error is enough
            return value
        countries = countries_for_zone(zone)
        if value is None:
            if len(countries) > 1:
                raise ValueError(f"is required: {zone} is used by {', '.join(countries)}; say which one")
            return countries[0] if countries else None
        if not re.fullmatch(r"[A-Z]{2}", value):
            raise ValueError(f'"{value}" is not an ISO 3166 alpha-2 code such as US')
        if value not in phonenumbers.SUPPORTED_REGIONS:  # imports read national numbers in this country
            raise ValueError(f'"{value}" is not a known ISO 3166 alpha-2 country code (e.g. US)')
        if countries and value not in countries:
            raise ValueError(f"{value} does not use {zone} (it is used by {', '.join(countries)})")
        return value

    @field_validator("calling_days", mode="before")
    @classmethod
    def _days_known(cls, value: Any) -> Any:
        return _normalise_days(value) if isinstance(value, list) else value

    @field_validator("calling_days")
    @classmethod
    def _days_nonempty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("choose at least one calling day")
        return value

    @field_validator("weekly_schedule", mode="before")
    @classmethod
    def _schedule_windows(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, dict):
            return value  # pydantic reports the wrong type
        days = info.data.get("calling_days")
        schedule: dict[str, list[list[str]]] = {}
        given: dict[str, Any] = {}
        for raw_day, windows in value.items():
            day = _DAY_ALIASES.get(str(raw_day).strip().lower())
            if day is None:
                raise ValueError(f'unknown day "{raw_day}" (use mon, tue, wed, thu, fri, sat, sun)')
            if day in given:  # "mon" and "Monday": one would silently replace the other's windows
                raise ValueError(f'{day} is given twice ("{given[day]}" and "{raw_day}"); put all its windows under one')
            given[day] = raw_day
            if not isinstance(windows, list):
                raise ValueError(f"{day}: expected a list of windows, got {windows!r}")
            checked = sorted((_window(w, day) for w in windows), key=lambda w: _minutes(w[0], end=False))
            for earlier, later in zip(checked, checked[1:]):
                if _minutes(later[0], end=False) < _minutes(earlier[1], end=True):
                    raise ValueError(f"{day}: windows {'-'.join(earlier)} and {'-'.join(later)} overlap")
            if checked:
                schedule[day] = checked
        if days is not None:
            missing = [d for d in days if d not in schedule]
            if missing:
                raise ValueError(f"calling day(s) {', '.join(missing)} have no calling window")
            extra = [d for d in schedule if d not in days]
            if extra:
                raise ValueError(f"{', '.join(extra)} has windows but is not a calling day")
        return {day: schedule[day] for day in WEEKDAYS if day in schedule}

    @field_validator("attempts_per_day")
    @classmethod
    def _per_day_within_total(cls, value: int, info: ValidationInfo) -> int:
        total = info.data.get("max_attempts")
        if total is not None and value > total:
            raise ValueError(f"{value} per day is more than max_attempts ({total})")
        return value

    @field_validator("outbound_number_ids")
    @classmethod
    def _numbers_fit_rotation(cls, value: list[int], info: ValidationInfo) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError("a number is listed twice")
        rotation = info.data.get("rotation_enabled")
        if rotation and len(value) < 2:
            raise ValueError(f"rotation is on: choose two or more numbers (got {len(value)})")
        if rotation is False and len(value) > 1:
            raise ValueError(f"rotation is off: choose exactly one number (got {len(value)}); turn rotation on to use several")
        return value

    @field_validator("active")
    @classmethod
    def _active_needs_start_and_number(cls, value: bool, info: ValidationInfo) -> bool:
        if value and "start_date" in info.data and info.data["start_date"] is None:
            raise ValueError("an active campaign needs a start date: set one, or turn Active off")
        if value and info.data.get("outbound_number_ids") == []:
            raise ValueError("an active campaign needs an outbound number: choose one, or turn Active off")
        return value

    @field_validator("retry_policy", mode="before")
    @classmethod
    def _retry_rules(cls, value: Any) -> Any:
        from tasks.retry_policy import check_overrides

        if isinstance(value, str):  # stored as JSON text
            import json

            value = json.loads(value)
        return check_overrides(value)

    def same_hours(self) -> list[list[str]] | None:
        """The windows every calling day shares, or None when days differ."""
        distinct = {tuple(map(tuple, w)) for w in self.weekly_schedule.values()}
        return [list(w) for w in next(iter(distinct))] if len(distinct) == 1 else None


def _normalise_days(value: list[Any]) -> list[str]:
    """Weekday keys in week order, accepting `mon` or `Monday` in any case; unknown names raise."""
    days = set()
    for raw in value:
        day = _DAY_ALIASES.get(str(raw).strip().lower())
        if day is None:
            raise ValueError(f'unknown day "{raw}" (use mon, tue, wed, thu, fri, sat, sun)')
        days.add(day)
    return [d for d in WEEKDAYS if d in days]


def _field_of(loc: tuple) -> str:
    parts = [str(p) for p in loc if not isinstance(p, int)]
    return ".".join(parts) or "settings"


_RANGES = {"max_attempts": "1 and 20", "attempts_per_day": "1 and max_attempts", "batch_size": "1 and 500",
           "exploration_share": "0 and 1", "number_daily_cap": "1 and 10000"}


def _message(field: str, error: dict) -> str:
    if error["type"] in ("greater_than_equal", "less_than_equal") and field in _RANGES:
        return f"must be between {_RANGES[field]}, got {error['input']!r}"
    if error["type"] == "string_too_short" and field == "name":
        return "is required"
    return error["msg"].removeprefix("Value error, ")


def errors_from_pydantic(error: PydanticValidationError) -> list[ValidationError]:
    """One ValidationError(field, rule) per problem pydantic found."""
    found = []
    for item in error.errors():
        # the shorthand is checked before fields exist, so its error carries no location
        field = "weekly_schedule" if item["type"] == _SCHEDULE_CONFLICT else _field_of(item["loc"])
        if item["type"] == "extra_forbidden":
            found.append(ValidationError(field, "unknown setting"))
        elif item["type"] == "missing":
            found.append(ValidationError(field, "is required"))
        else:
            found.append(ValidationError(field, _message(field, item)))
    return found


def validate_settings(data: dict[str, Any]) -> list[ValidationError]:
    """Every rule the settings break, each naming its field (empty when valid); for forms."""
    try:
        CampaignSettings.model_validate(data)
    except PydanticValidationError as error:
        return errors_from_pydantic(error)
    return []


def parse_settings(data: dict[str, Any]) -> CampaignSettings:
    """The validated settings, or one UserError listing every broken rule ("field: rule; ...")."""
    try:
        return CampaignSettings.model_validate(data)
    except PydanticValidationError as error:
        raise combined_error(errors_from_pydantic(error)) from None


def combined_error(errors: list[ValidationError]) -> UserError:
    """One error for the CLI: the only one itself, or a UserError joining all on one line."""
    if len(errors) == 1:
        return errors[0]
    combined = UserError("; ".join(str(e) for e in errors))
    combined.errors = errors  # type: ignore[attr-defined]
    return combined
