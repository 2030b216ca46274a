"""The contact-import contract: mapping targets, header synonyms and the Pandera model of a mapped row."""

from __future__ import annotations

import re
import unicodedata

import pandera.polars as pa
import polars as pl

PHONE = "contact_phone"
NAME = "contact_name"
COMPANY = "company_name"
EMAIL = "email"
IGNORE = "ignore"
CUSTOM_PREFIX = "custom:"
FIELD_TARGETS = (PHONE, NAME, COMPANY, EMAIL)

# Header (lower case, accents and punctuation removed) -> target. English and Spanish.
HEADER_SYNONYMS: dict[str, str] = {
    **dict.fromkeys((
        "phone", "phonenumber", "phoneno", "telephone", "tel", "mobile", "mobilephone", "mobilenumber",
        "cell", "cellphone", "cellnumber", "number", "contactphone", "phone1", "primaryphone", "whatsapp",
        "cellno", "mobileno", "telno", "telephoneno", "telephonenumber",
        "telefono", "numerodetelefono", "numero", "celular", "movil", "telefonomovil", "contactnumber",
    ), PHONE),
    **dict.fromkeys((
        "name", "fullname", "contactname", "contact", "customer", "customername", "firstname", "lastname",
        "nombre", "nombrecompleto", "apellido", "apellidos", "cliente", "nombres",
    ), NAME),
    **dict.fromkeys((
        "company", "companyname", "business", "organization", "organisation", "org", "account",
        "employer", "empresa", "compania", "negocio", "organizacion",
    ), COMPANY),
    **dict.fromkeys((
        "email", "emailaddress", "mail", "correo", "correoelectronico", "contactemail",
    ), EMAIL),
}
# Several columns may feed the name ("First Name" + "Last Name"): joined with a space, in file order.
MULTI_SOURCE_TARGETS = frozenset({NAME})
# Name headers that hold only part of a name. A file with a whole-name column as well ("Full Name",
# "First Name", "Last Name") takes the whole name from it; the parts become custom properties.
NAME_PART_KEYS = frozenset({"firstname", "lastname", "nombre", "nombres", "apellido", "apellidos"})

NAME_MAX = 200
COMPANY_MAX = 200
EMAIL_MAX = 254
PROPERTY_MAX = 1000
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s.]+$"
E164_PATTERN = r"^\+[1-9]\d{6,14}$"
_CUSTOM_KEY = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
# The model's columns a row is not imported without: the dialer calls the phone. A value of any other column
# that fails its check (the name, company, e-mail, a custom property: the agent's greeting and notes) is left
# empty and the row imported, with a warning. A state or ZIP property is no exception: a value too long to be
# one would only be unrecognised, and compliance reads the calling zone from the phone then, as for any other.
REQUIRED_COLUMNS = ("row", "phone_e164")


def header_key(header: str) -> str:
    """A header folded for synonym lookup: accents stripped, lower case, letters and digits only."""
    return re.sub(r"[^a-z0-9]", "", strip_accents(header).lower())


def strip_accents(text: str) -> str:
    """``text`` without combining accents ("Teléfono" -> "Telefono")."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def snake_case(header: str) -> str:
    """A custom property name from a header: "Plan Tier (2024)" -> "plan_tier_2024"."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", strip_accents(header).strip())
    key = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:63].rstrip("_")
    if not key:
        return "column"
    return key if key[0].isalpha() else f"col_{key}"[:63]


def parse_target(text: str) -> str:
    """A mapping target checked and normalised; custom targets get a snake_case name."""
    from tasks.errors import ValidationError

    value = text.strip()
    if value.lower() in FIELD_TARGETS or value.lower() == IGNORE:
        return value.lower()
    if value.lower().startswith(CUSTOM_PREFIX):
        name = value[len(CUSTOM_PREFIX):]
        if not name.strip():
            raise ValidationError("mapping", f"custom target {text!r} needs a name, e.g. custom:plan")
        return CUSTOM_PREFIX + snake_case(name)
    raise ValidationError(
        "mapping",
        f"unknown target {text!r}: use contact_phone, contact_name, company_name, email, custom:<name> or ignore",
    )


def is_custom_key(key: str) -> bool:
    """Whether ``key`` is a valid custom property name (snake_case, starts with a letter)."""
    return bool(_CUSTOM_KEY.match(key))


class ContactImportModel(pa.DataFrameModel):
    """One mapped, normalised import row; ``row`` is the row number the user sees in the file."""

    row: int = pa.Field(ge=2)
    phone_e164: str = pa.Field(nullable=False, str_matches=E164_PATTERN)
    contact_name: str = pa.Field(nullable=True, str_length={"max_value": NAME_MAX})
    company_name: str = pa.Field(nullable=True, str_length={"max_value": COMPANY_MAX})
    email: str = pa.Field(nullable=True, str_length={"max_value": EMAIL_MAX}, str_matches=EMAIL_PATTERN)

    class Config:
        strict = False
        coerce = False


def import_schema(custom_columns: list[str]) -> pa.DataFrameSchema:
    """The model plus one length-checked text column per custom property column of this file."""
    return ContactImportModel.to_schema().add_columns(
        {column: pa.Column(pl.String, pa.Check.str_length(max_value=PROPERTY_MAX), nullable=True) for column in custom_columns}
    )


def check_reason(column: str, check: str) -> str:
    """A user-facing reason for a failed Pandera check of the import model."""
    if check == "not_nullable":
        return "required value is missing"
    length = re.match(r"str_length\(None, (\d+)\)", check)
    if length:
        return f"longer than {length.group(1)} characters"
    if check.startswith("str_matches"):
        return "not a valid e-mail address" if column == "email" else "not an E.164 phone number"
    return f"failed check {check}"
