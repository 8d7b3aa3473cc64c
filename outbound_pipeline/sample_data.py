"""Made-up but realistic leads and public signals, for the demo, the tests and the benchmarks.

Everything is generated from a seed, so the shipped files can be rebuilt byte for byte
(`python -m outbound_pipeline.sample_data`) and benchmarks can ask for any size.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import phonenumbers

FIRST = ["Ana", "Bruno", "Carla", "Diego", "Elena", "Felix", "Greta", "Hugo", "Iris", "Jonas", "Kira", "Lucas", "Marta", "Nils", "Olga",
         "Pablo", "Quinn", "Rosa", "Sven", "Tara", "Uma", "Victor", "Wendy", "Xavier", "Yara", "Zoe", "Aisha", "Kenji", "Priya", "Mateo"]
LAST = ["Alvarez", "Becker", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Hansen", "Ibarra", "Jensen", "Kowalski", "Lopez",
        "Moreau", "Novak", "Ortiz", "Petrov", "Quintana", "Rossi", "Silva", "Tanaka", "Ueda", "Varga", "Weber", "Xu", "Young", "Zimmer"]
ROLES = ["Head of Operations", "VP Logistics", "COO", "Supply Chain Manager", "Director of Fulfilment", "Operations Lead", "CEO", "Head of Customer Experience"]
INDUSTRIES = ["logistics", "retail", "food delivery", "e-commerce", "manufacturing", "pharma distribution"]
COUNTRIES = {"ES": "Europe/Madrid", "PT": "Europe/Lisbon", "GB": "Europe/London", "DE": "Europe/Berlin", "FR": "Europe/Paris",
             "US": "America/New_York", "MX": "America/Mexico_City", "BR": "America/Sao_Paulo", "JP": "Asia/Tokyo"}
COMPANY_WORDS = ["Nimbus", "Harbor", "Vela", "Quanta", "Orbit", "Lumen", "Atlas", "Cobalt", "Meridian", "Solace", "Tidal", "Verde",
                 "Arrow", "Beacon", "Cinder", "Delta", "Ember", "Fjord", "Granite", "Helix"]
COMPANY_SUFFIX = ["Logistics", "Freight", "Foods", "Retail", "Labs", "Supply", "Express", "Goods"]
SIGNAL_TEMPLATES = [
    ("{company} opens a new distribution hub", "{company} announced a new distribution hub to shorten delivery times in {region}, adding {n} staff."),
    ("{company} reports record order volume", "{company} said order volume grew {n}% year on year, straining last-mile capacity."),
    ("Interview: {company} on delivery promises", "In an interview, {company}'s leadership called on-time delivery their top priority for the year."),
    ("{company} is hiring operations analysts", "{company} posted {n} openings for operations and routing analysts this quarter."),
    ("{company} expands to new markets", "{company} is expanding into {n} new cities and rebuilding its carrier network."),
    ("{company} adopts WhatsApp for customer updates", "{company} now sends delivery updates over WhatsApp and reports fewer support calls."),
    ("{company} publishes sustainability targets", "{company} committed to cutting failed deliveries by {n}% to reduce emissions."),
]
HEADER = ["first_name", "last_name", "email", "phone", "company", "role", "country", "timezone", "owner_email", "industry", "employees", "crm_id"]


def company_names(count: int = 40, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    names: list[str] = []
    while len(names) < count:
        name = f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_SUFFIX)}"
        if name not in names:
            names.append(name)
    return names


def domain_of(company: str) -> str:
    return company.lower().replace(" ", "") + ".example"


def _mobile(region: str, rng: random.Random) -> str:
    """A valid mobile number of a region, varied from the library's example number."""
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    if example is None:
        raise ValueError(f"no example mobile number for region {region!r}")
    national = str(example.national_number)
    for _ in range(100):
        tail = "".join(rng.choice("0123456789") for _ in range(4))
        candidate = phonenumbers.PhoneNumber(country_code=example.country_code, national_number=int(national[:-4] + tail))
        if phonenumbers.is_valid_number(candidate):
            return phonenumbers.format_number(candidate, phonenumbers.PhoneNumberFormat.E164)
    return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)


def _as_written(e164: str, country: str, rng: random.Random) -> str:
    """Write a number the way people do: international, national with spaces, or 00-prefixed."""
    number = phonenumbers.parse(e164)
    style = rng.random()
    if style < 0.4:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    if style < 0.8:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return "00" + e164[1:]


def make_leads(count: int, seed: int = 42, bad_rows: bool = True) -> list[list[str]]:
    """Rows (without header) of a lead list; a few deliberately bad ones when `bad_rows`."""
    rng = random.Random(seed)
    companies = company_names()
    rows: list[list[str]] = []
    for i in range(count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        company = rng.choice(companies)
        country = rng.choice(list(COUNTRIES))
        reach = rng.random()
        email = f"{first}.{last}{i}@{domain_of(company)}".lower() if reach < 0.85 else ""
        phone = _as_written(_mobile(country, rng), country, rng) if reach > 0.35 else ""
        tz = COUNTRIES[country] if rng.random() < 0.5 else ""
        rows.append([first, last, email, phone, company, rng.choice(ROLES), country, tz, "owner@example.com",
                     rng.choice(INDUSTRIES), str(rng.choice([20, 80, 250, 1200, 5000])), f"CRM-{10000 + i}"])
    if bad_rows:
        rows[7][2] = "not-an-email"                     # invalid email
        rows[19][3], rows[19][2] = "12345", ""          # invalid phone, no email
        rows[31][2], rows[31][3] = "", ""               # no way to reach
        rows[44][0] = ""                                # no first name
        rows[58] = list(rows[12])                       # exact duplicate
        rows[77][2] = next(r[2] for r in rows if r[2] and "@" in r[2])  # duplicate email
        rows[90][3] = "+1 555 0100"                     # not a valid number
    return rows


def make_signals(seed: int = 11) -> dict[str, list[dict[str, str]]]:
    """Five dated, cited signals per sample company."""
    rng = random.Random(seed)
    signals: dict[str, list[dict[str, str]]] = {}
    for company in company_names():
        picks = rng.sample(SIGNAL_TEMPLATES, 5)
        items = []
        for k, (title, text) in enumerate(picks):
            n = rng.choice([3, 5, 12, 18, 25, 40])
            region = rng.choice(["Iberia", "the UK", "the Midwest", "Bavaria", "Kanto", "Lombardy"])
            slug = title.format(company=company).lower().replace(" ", "-").replace(":", "").replace("'", "")
            items.append({
                "title": title.format(company=company),
                "url": f"https://news.{domain_of(company)}/{2026 - k // 3}/{slug}",
                "content": text.format(company=company, n=n, region=region),
                "published_date": f"2026-{rng.randint(1, 10):02d}-{rng.randint(1, 28):02d}",
            })
        signals[company] = items
    return signals


def write_leads_csv(path: str | Path, count: int, seed: int = 42, bad_rows: bool = True) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(make_leads(count, seed, bad_rows))
        if bad_rows:
            handle.write('Broken,"Row,unclosed quote\n')  # malformed CSV at the end of the file
    return path


def main() -> None:
    data = Path(__file__).resolve().parent.parent / "data"
    write_leads_csv(data / "sample_leads.csv", 300)
    (data / "sample_signals.json").write_text(json.dumps(make_signals(), indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
