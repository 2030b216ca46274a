"""Generate data/sample_contacts.csv and .xlsx: a few hundred messy, realistic contact rows (fixed seed).

Run: .venv/bin/python data/make_samples.py
Phones use the fictional 555-01XX range in North America; about 5% of rows are bad on purpose.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
HEADERS = ["Full Name", "Phone Number", "E-mail", "Company", "Plan", "City"]
ARIZONA = {"602": "Phoenix", "480": "Mesa", "623": "Glendale", "520": "Tucson", "928": "Flagstaff"}
OTHER_US = {"212": "New York", "305": "Miami", "312": "Chicago", "415": "San Francisco", "713": "Houston",
            "303": "Denver", "702": "Las Vegas", "206": "Seattle"}
FIRST = ["Ana", "José", "María", "John", "Emily", "Luis", "Sofía", "Michael", "Sarah", "David", "Lucía", "Chris",
         "Jessica", "Carlos", "Ashley", "Daniel", "Valentina", "Kevin", "Laura", "Brian", "Camila", "Jason", "Renée"]
LAST = ["García", "Smith", "Martínez", "Johnson", "Hernández", "Brown", "López", "Davis", "González", "Miller",
        "Rodríguez", "Wilson", "Muñoz", "Anderson", "Pérez", "Taylor", "O'Brien", "Nguyen", "Chávez", "Lee"]
COMPANIES = ["Desert Solar LLC", "Saguaro Dental", "Camelback Realty", "Sonoran Roofing", "Valley HVAC",
             "Copper State Insurance", "Mesa Auto Group", "Tempe Fitness", "", "", "Grand Canyon Tours",
             "Cactus Legal", "=SUM(A1:A2)"]
PLANS = ["Basic", "Pro", "Enterprise", "", "Trial"]
BAD_PHONES = ["123", "n/a", "555-0199", "602-555-01", "+44 20", "call me", "0000000000", "(111) 555-0100", ""]


def us_formats(area: str, line: str) -> list[str]:
    """The ways people type one North American number."""
    exchange, last = "555", line
    return [f"({area}) {exchange}-{last}", f"{area}-{exchange}-{last}", f"{area}.{exchange}.{last}",
            f"{area}{exchange}{last}", f"+1 {area} {exchange} {last}", f"1-{area}-{exchange}-{last}",
            f"+1{area}{exchange}{last}", f" {area} {exchange} {last} ", f"1 ({area}) {exchange}-{last}"]


def make_rows(rng: random.Random, count: int = 320) -> list[list[str]]:
    """`count` contact rows plus duplicates in other formats and a few junk rows."""
    rows: list[list[str]] = []
    used: set[tuple[str, str]] = set()
    while len(rows) < count:
        pick = rng.random()
        first, last = rng.choice(FIRST), rng.choice(LAST)
        name = f"{first} {last}" if rng.random() > 0.05 else ""
        email = f"{first.lower()}.{last.lower()}@example.com".replace("'", "") if rng.random() > 0.3 else ""
        if rng.random() < 0.02:
            email = f"{first.lower()}@example"  # bad e-mail
        company, plan = rng.choice(COMPANIES), rng.choice(PLANS)
        if pick < 0.72:
            area = rng.choice(list(ARIZONA))
            city = ARIZONA[area]
        elif pick < 0.88:
            area = rng.choice(list(OTHER_US))
            city = OTHER_US[area]
        else:
            area = ""
        if area:
            line = f"01{rng.randint(0, 99):02d}"
            if (area, line) in used:
                continue
            used.add((area, line))
            phone = rng.choice(us_formats(area, line))
        elif pick < 0.93:
            phone, city = f"+52 55 {rng.randint(5000, 5999)} {rng.randint(1000, 9999)}", "Ciudad de México"
        elif pick < 0.97:
            phone, city = f"+57 3{rng.randint(10, 20)} {rng.randint(200, 899)} {rng.randint(1000, 9999)}", "Bogotá"
        else:
            phone, city = f"+1 416 555 01{rng.randint(0, 99):02d}", "Toronto"
        if rng.random() < 0.04:
            phone = rng.choice(BAD_PHONES)
        rows.append([name, phone, email, company, plan, city if rng.random() > 0.1 else ""])
    # Duplicates: the same person again later, phone typed differently, with a newer plan.
    for row in rng.sample(rows, 16):
        digits = "".join(ch for ch in row[1] if ch.isdigit())
        if len(digits) in (10, 11) and not row[1].strip().startswith(("+5", "+4")):
            area, line = digits[-10:-7], digits[-4:]
            rows.append([row[0], rng.choice(us_formats(area, line)), row[2], row[3], rng.choice(["Pro", "Enterprise"]), ""])
    rng.shuffle(rows)
    # Junk: an empty line and a totals row, as exported spreadsheets often have.
    rows.insert(rng.randint(10, len(rows)), ["", "", "", "", "", ""])
    rows.append(["TOTAL", "", "", "", "", ""])
    return rows


def write_csv(rows: list[list[str]], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADERS)
        writer.writerows(rows)


def write_xlsx(rows: list[list[str]], path: Path) -> None:
    import xlsxwriter

    workbook = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_numbers": False})
    sheet = workbook.add_worksheet("Contacts")
    sheet.write_row(0, 0, HEADERS)
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row):
            if c == 1 and value.isdigit():
                sheet.write_number(r, c, int(value))  # a phone typed into Excel as a number
            elif value:
                sheet.write_string(r, c, value)
    workbook.close()


def main() -> None:
    rows = make_rows(random.Random(20260427))
    write_csv(rows, HERE / "sample_contacts.csv")
    write_xlsx(rows, HERE / "sample_contacts.xlsx")
    print(f"wrote {len(rows)} rows to {HERE / 'sample_contacts.csv'} and {HERE / 'sample_contacts.xlsx'}")


if __name__ == "__main__":
    main()
