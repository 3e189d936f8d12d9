"""A seeded synthetic population with ground truth, for tests, demos and benchmarks.

People are drawn with realistic name frequencies (Faker's US census lists), then written as
records by several source systems with the errors real feeds have: typos, transpositions,
nicknames, married-name changes, day/month swaps, moves, changed phones, missing fields and
mixed formats. Hard cases are made on purpose: common names, twins, and fathers and sons
(Sr/Jr) at one address whose suffix is often missing. Each person's medical history stays
consistent across records but is written differently (T2DM vs type 2 diabetes mellitus,
brand vs generic drug names).

Everything is synthetic; no real patient data is read or written.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from faker.providers.address.en_US import Provider as AddressProvider
from faker.providers.person.en_US import Provider as PersonProvider

from medmatch.data.clinical import vocabulary
from medmatch.data.names import _nicknamer

SOURCE_SYSTEMS = ("GENERAL_HOSPITAL", "COUNTY_CLINIC", "LAB_NET", "PHARMACY_PLUS", "EURO_CARE")
# Each system writes dates, phones and sex its own way; EURO_CARE writes day-first dates.
_DATE_STYLE = {
    "GENERAL_HOSPITAL": "iso",
    "COUNTY_CLINIC": "us",
    "LAB_NET": "compact",
    "PHARMACY_PLUS": "us",
    "EURO_CARE": "dotted",
}
_SEX_STYLE = {
    "GENERAL_HOSPITAL": "MF",
    "COUNTY_CLINIC": "word",
    "LAB_NET": "MF",
    "PHARMACY_PLUS": "word",
    "EURO_CARE": "hl7num",
}
# Real, assigned North American area codes, so phones pass `phonenumbers` validation.
_AREA_CODES = (
    201,
    202,
    212,
    213,
    215,
    301,
    305,
    310,
    312,
    313,
    404,
    408,
    415,
    469,
    503,
    512,
    602,
    612,
    617,
    646,
    702,
    713,
    718,
    720,
    773,
    804,
    813,
    818,
    857,
    904,
    916,
    919,
    925,
    949,
    954,
    971,
    972,
    978,
    980,
    984,
)
_STREET_SUFFIXES = (
    ("Street", "St"),
    ("Avenue", "Ave"),
    ("Road", "Rd"),
    ("Lane", "Ln"),
    ("Drive", "Dr"),
    ("Court", "Ct"),
    ("Boulevard", "Blvd"),
    ("Place", "Pl"),
)
_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com")
_COMMON_NAMES = (
    ("John", "Smith", "M"),
    ("Maria", "Garcia", "F"),
    ("James", "Johnson", "M"),
    ("Mary", "Williams", "F"),
    ("Robert", "Brown", "M"),
    ("Jose", "Rodriguez", "M"),
)
_LETTERS = "abcdefghijklmnopqrstuvwxyz"

TRUTH_COLUMNS = ("record_id", "person_id", "family_id", "relation")


@dataclass(frozen=True)
class SyntheticConfig:
    people: int = 1000
    seed: int = 42
    twin_rate: float = 0.02
    father_son_rate: float = 0.02
    common_name_rate: float = 0.02
    medical_rate: float = 0.7
    # of adult women, the share who took a married name; of everyone, the share who moved
    married_rate: float = 0.2
    move_rate: float = 0.25
    invalid_value_rate: float = 0.002


@dataclass
class SyntheticData:
    demographics: pd.DataFrame
    medical: pd.DataFrame
    truth: pd.DataFrame

    def write(self, out_dir: str | Path, fmt: str = "csv") -> dict[str, Path]:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name, frame in (
            ("demographics", self.demographics),
            ("medical", self.medical),
            ("truth", self.truth),
        ):
            path = out / f"{name}.{fmt}"
            if fmt == "parquet":
                frame.to_parquet(path, index=False)
            else:
                frame.to_csv(path, index=False)
            paths[name] = path
        return paths


def _weighted(names: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    keys = np.array(list(names.keys()), dtype=object)
    weights = np.array(list(names.values()), dtype=float)
    return keys, weights / weights.sum()


class _Population:
    """People as column arrays; hard cases are appended as edited copies."""

    def __init__(self, cfg: SyntheticConfig, rng: np.random.Generator) -> None:
        n = cfg.people
        self.rng = rng
        male, pm = _weighted(PersonProvider.first_names_male)
        female, pf = _weighted(PersonProvider.first_names_female)
        last, pl = _weighted(PersonProvider.last_names)
        sex = rng.choice(np.array(["M", "F"], dtype=object), n)
        is_m = sex == "M"
        first = np.where(is_m, rng.choice(male, n, p=pm), rng.choice(female, n, p=pf))
        middle = np.where(is_m, rng.choice(male, n, p=pm), rng.choice(female, n, p=pf))
        start = date(1935, 1, 1).toordinal()
        end = date(2015, 12, 31).toordinal()
        self.cols: dict[str, np.ndarray] = {
            "sex": sex,
            "first": first,
            "middle": middle,
            "last": rng.choice(last, n, p=pl),
            "dob": rng.integers(start, end, n),
            "suffix": np.full(n, None, dtype=object),
            "family": np.full(n, None, dtype=object),
            "relation": np.full(n, None, dtype=object),
        }
        self._cities = self._make_cities(rng)
        self.cols |= self._addresses(n)
        self.cols["phone"] = self._phones(n)
        self.cols["ssn"] = self._ssns(n)
        self.cols["email_user"] = np.array(
            [
                f"{f.lower()}.{la.lower()}{i % 97}"
                for i, (f, la) in enumerate(zip(first, self.cols["last"], strict=True))
            ],
            dtype=object,
        )
        self.cols["has_email"] = rng.random(n) < 0.7
        self.female_names, self.pf, self.male_names, self.pm = female, pf, male, pm
        self.last_names, self.pl = last, pl

    @staticmethod
    def _make_cities(rng: np.random.Generator) -> list[tuple[str, str, int]]:
        prefixes = list(AddressProvider.city_prefixes)
        suffixes = list(AddressProvider.city_suffixes)
        states = list(AddressProvider.states_abbr)[:50]
        cities = []
        for i in range(400):
            stem = PersonProvider.last_names and list(PersonProvider.last_names)[i * 2 % 1000]
            name = (
                f"{prefixes[i % len(prefixes)]} {stem}"
                if i % 3 == 0
                else f"{stem}{suffixes[i % len(suffixes)]}"
            )
            cities.append((name, states[i % len(states)], 10000 + i * 223 % 89000))
        return cities

    def _addresses(self, n: int) -> dict[str, np.ndarray]:
        rng = self.rng
        idx = rng.integers(0, len(self._cities), n)
        street_names = rng.choice(np.array(list(PersonProvider.last_names), dtype=object), n)
        suffix = rng.integers(0, len(_STREET_SUFFIXES), n)
        house = rng.integers(1, 9999, n)
        zip_offset = rng.integers(0, 40, n)
        return {
            "house": house,
            "street": street_names,
            "street_suffix": suffix,
            "city": np.array([self._cities[i][0] for i in idx], dtype=object),
            "state": np.array([self._cities[i][1] for i in idx], dtype=object),
            "zip": np.array([self._cities[i][2] + z for i, z in zip(idx, zip_offset, strict=True)]),
        }

    def _phones(self, n: int) -> np.ndarray:
        rng = self.rng
        area = rng.choice(np.array(_AREA_CODES), n)
        exchange = rng.integers(200, 1000, n)
        exchange = np.where(exchange % 100 == 11, exchange + 1, exchange)
        line = rng.integers(0, 10000, n)
        return area * 10_000_000 + exchange * 10_000 + line

    def _ssns(self, n: int) -> np.ndarray:
        rng = self.rng
        area = rng.integers(1, 899, n)
        area = np.where(area == 666, 667, area)
        group = rng.integers(1, 100, n)
        serial = rng.integers(1, 10000, n)
        return area * 1_000_000 + group * 10_000 + serial

    def append_relatives(self, cfg: SyntheticConfig) -> None:
        """Twins, fathers and sons, and people who share a very common name."""
        rng, cols, n = self.rng, self.cols, len(self.cols["sex"])
        adds: list[dict] = []
        twins = np.flatnonzero(rng.random(n) < cfg.twin_rate)
        for i in twins:
            sib = {k: v[i] for k, v in cols.items()}
            sib["sex"] = rng.choice(["M", "F"])
            pool, p = (
                (self.male_names, self.pm) if sib["sex"] == "M" else (self.female_names, self.pf)
            )
            while sib["first"] == cols["first"][i]:
                sib["first"] = rng.choice(pool, p=p)
            sib["middle"] = rng.choice(pool, p=p)
            sib["email_user"] = f"{sib['first'].lower()}.{sib['last'].lower()}{n + len(adds)}"
            sib["family"] = cols["family"][i] = f"F{i}"
            sib["relation"], cols["relation"][i] = "twin", "twin"
            sib["ssn"] = int(self._ssns(1)[0])
            adds.append(sib)
        fathers = np.flatnonzero(
            (rng.random(n) < cfg.father_son_rate)
            & (cols["sex"] == "M")
            & (cols["dob"] < date(1985, 1, 1).toordinal())
        )
        for i in fathers:
            son = {k: v[i] for k, v in cols.items()}
            son["dob"] = int(cols["dob"][i] + rng.integers(20 * 365, 30 * 365))
            son["suffix"], cols["suffix"][i] = "JR", "SR"
            son["family"] = cols["family"][i] = f"F{i}"
            son["relation"], cols["relation"][i] = "son", "father"
            son["ssn"] = int(self._ssns(1)[0])
            son["email_user"] = f"{son['email_user']}jr"
            son["has_email"] = rng.random() < 0.5
            adds.append(son)
        common = np.flatnonzero(rng.random(n) < cfg.common_name_rate)
        for i in common:
            first, last, sex = _COMMON_NAMES[int(rng.integers(0, len(_COMMON_NAMES)))]
            cols["first"][i], cols["last"][i], cols["sex"][i] = first, last, sex
            cols["relation"][i] = "common_name"
        if adds:
            for key in cols:
                cols[key] = np.concatenate(
                    [cols[key], np.array([a[key] for a in adds], dtype=cols[key].dtype)]
                )


def _typo(rnd: random.Random, s: str) -> str:
    if len(s) < 3:
        return s
    i = rnd.randrange(1, len(s) - 1)
    kind = rnd.randrange(4)
    if kind == 0:
        return s[:i] + rnd.choice(_LETTERS) + s[i + 1 :]
    if kind == 1:
        return s[:i] + s[i + 1 :]
    if kind == 2:
        return s[:i] + rnd.choice(_LETTERS) + s[i:]
    return s[: i - 1] + s[i] + s[i - 1] + s[i + 1 :]


def _format_date(d: date, style: str, rnd: random.Random) -> str:
    if rnd.random() < 0.1:  # systems are not consistent either
        style = rnd.choice(("iso", "us", "compact", "dotted", "text"))
    if style == "iso":
        return d.isoformat()
    if style == "us":
        return f"{d.month:02d}/{d.day:02d}/{d.year}"
    if style == "compact":
        return f"{d.year}{d.month:02d}{d.day:02d}"
    if style == "dotted":
        return f"{d.day:02d}.{d.month:02d}.{d.year}"
    return d.strftime("%b %d %Y")


def _format_phone(number: int, rnd: random.Random) -> str:
    s = f"{number:010d}"
    style = rnd.randrange(5)
    if style == 0:
        return f"({s[:3]}) {s[3:6]}-{s[6:]}"
    if style == 1:
        return f"{s[:3]}-{s[3:6]}-{s[6:]}"
    if style == 2:
        return s
    if style == 3:
        return f"+1 {s[:3]} {s[3:6]} {s[6:]}"
    return f"{s[:3]}.{s[3:6]}.{s[6:]}"


def _format_sex(sex: str, style: str) -> str:
    if style == "word":
        return {"M": "Male", "F": "Female"}[sex]
    if style == "hl7num":
        return {"M": "1", "F": "2"}[sex]
    return sex


class _RecordWriter:
    def __init__(self, pop: _Population, cfg: SyntheticConfig, rnd: random.Random) -> None:
        self.pop, self.cfg, self.rnd = pop, cfg, rnd
        vocab = vocabulary()
        self.conditions = sorted(vocab.condition_names)
        self.cond_names = vocab.condition_names
        self.drug_names = vocab.drug_names
        self.drugs_for: dict[str, list[str]] = {}
        for drug, treats in vocab.drug_indications.items():
            for c in treats:
                self.drugs_for.setdefault(c, []).append(drug)
        self.nicknamer = _nicknamer()
        self._nick_cache: dict[str, list[str]] = {}

    def nicknames(self, name: str) -> list[str]:
        key = name.lower()
        if key not in self._nick_cache:
            self._nick_cache[key] = sorted(self.nicknamer.nicknames_of(key))
        return self._nick_cache[key]

    def history(self) -> tuple[list[str], list[str]]:
        rnd = self.rnd
        k = rnd.choices((0, 1, 2, 3, 4), weights=(3, 3, 2, 1.5, 0.5))[0]
        conds = rnd.sample(self.conditions, k)
        drugs = [
            rnd.choice(self.drugs_for[c])
            for c in conds
            if c in self.drugs_for and rnd.random() < 0.8
        ]
        return conds, sorted(set(drugs))

    def write(
        self, i: int, record_id: str, system: str, person_state: dict
    ) -> tuple[dict, dict | None]:
        rnd, c = self.rnd, self.pop.cols
        r = rnd.random
        first, middle, last = str(c["first"][i]), str(c["middle"][i]), str(c["last"][i])
        if person_state["married_name"] and r() < 0.6:
            last = person_state["married_name"]
        roll = r()
        if roll < 0.12 and self.nicknames(first):
            first = rnd.choice(self.nicknames(first)).title()
        elif roll < 0.18:
            first = _typo(rnd, first)
        if r() < 0.06:
            last = _typo(rnd, last)
        if r() < 0.1:
            first, last = first.upper(), last.upper()
        suffix = c["suffix"][i] if (c["suffix"][i] and r() < 0.5) else None
        if suffix and r() < 0.2:
            last, suffix = f"{last} {suffix.title()}.", None
        dob = date.fromordinal(int(c["dob"][i]))
        roll = r()
        if roll < 0.03 and dob.day <= 12 and dob.day != dob.month:
            dob = date(dob.year, dob.day, dob.month)
        elif roll < 0.05:
            dob = dob + timedelta(days=rnd.choice((-1, 1, 10, -10, 365, -365)))
        moved = person_state["moved"] and r() < 0.5
        addr = (
            person_state["new_address"]
            if moved
            else (
                int(c["house"][i]),
                str(c["street"][i]),
                int(c["street_suffix"][i]),
                str(c["city"][i]),
                str(c["state"][i]),
                int(c["zip"][i]),
            )
        )
        house, street, sfx, city, state, zipc = addr
        sfx_word = _STREET_SUFFIXES[sfx][0 if r() < 0.5 else 1]
        address = f"{house} {street} {sfx_word}"
        if r() < 0.05:
            address = _typo(rnd, address)
        phone_num = (
            person_state["new_phone"]
            if (person_state["new_phone"] and r() < 0.5)
            else int(c["phone"][i])
        )
        if r() < 0.02:  # a mistyped digit in the line number keeps the number valid
            phone_num = (
                phone_num
                - phone_num % 10_000
                + (phone_num % 10_000 + rnd.randrange(1, 10) * 10 ** rnd.randrange(4)) % 10_000
            )
        row = {
            "record_id": record_id,
            "source_system": system,
            "external_id": f"{system[:3]}-{rnd.randrange(10**8):08d}",
            "name_first": first if r() > 0.01 else None,
            "name_middle": middle if r() < 0.4 else (middle[0] if r() < 0.3 else None),
            "name_last": last if r() > 0.01 else None,
            "name_suffix": suffix,
            "date_of_birth": _format_date(dob, _DATE_STYLE[system], rnd) if r() > 0.02 else None,
            "gender": _format_sex(str(c["sex"][i]), _SEX_STYLE[system]) if r() > 0.03 else None,
            "phone": _format_phone(phone_num, rnd) if r() > 0.15 else None,
            "email": (
                f"{c['email_user'][i]}@{_DOMAINS[(i + (r() < 0.05)) % len(_DOMAINS)]}"
                if c["has_email"][i] and r() < 0.8
                else None
            ),
            "address_line": address if r() > 0.05 else None,
            "city": city if r() > 0.03 else None,
            "state": state,
            "postal_code": f"{zipc:05d}" if r() > 0.04 else None,
            "ssn": self._ssn(int(c["ssn"][i])) if r() < 0.5 else None,
            "mrn": f"MRN{rnd.randrange(10**7):07d}",
        }
        if r() < 0.01 and row["name_first"] and row["name_last"]:
            row["name_first"], row["name_last"] = row["name_last"], row["name_first"]
        if r() < self.cfg.invalid_value_rate:
            row["date_of_birth"] = f"{dob.year}-02-31"
        if r() < self.cfg.invalid_value_rate:
            row["phone"] = "call-me-later"
        medical = None
        conds, drugs = person_state["history"]
        if (conds or drugs) and r() < self.cfg.medical_rate:
            kept_c = [rnd.choice(self.cond_names[x]) for x in conds if r() < 0.85]
            kept_d = [rnd.choice(self.drug_names[x]) for x in drugs if r() < 0.85]
            medical = {
                "record_id": record_id,
                "conditions": "; ".join(kept_c),
                "medications": "; ".join(kept_d),
            }
        return row, medical

    def _ssn(self, ssn: int) -> str:
        s = f"{ssn:09d}"
        if self.rnd.random() < 0.02:
            s = _typo(self.rnd, s)
            if not s.isdigit() or len(s) != 9:
                s = f"{ssn:09d}"
        return f"{s[:3]}-{s[3:5]}-{s[5:]}" if self.rnd.random() < 0.5 else s


def _new_address(pop: _Population, i: int, rnd: random.Random, street_name: str) -> tuple:
    """A move: a third stay in town (same city, a nearby postcode), the rest go elsewhere."""
    c = pop.cols
    street = (rnd.randrange(1, 9999), street_name, rnd.randrange(len(_STREET_SUFFIXES)))
    if rnd.random() < 0.33:
        return (
            *street,
            str(c["city"][i]),
            str(c["state"][i]),
            int(c["zip"][i]) + rnd.randrange(1, 9),
        )
    city, state, base = pop._cities[rnd.randrange(len(pop._cities))]
    return (*street, city, state, base + rnd.randrange(0, 40))


def generate(people: int = 1000, seed: int = 42, **overrides: float) -> SyntheticData:
    """Generate `people` people (plus their twins and sons) and their records."""
    cfg = SyntheticConfig(people=people, seed=seed, **overrides)  # type: ignore[arg-type]
    rng = np.random.default_rng(seed)
    rnd = random.Random(seed)
    pop = _Population(cfg, rng)
    pop.append_relatives(cfg)
    writer = _RecordWriter(pop, cfg, rnd)
    cols = pop.cols
    n = len(cols["sex"])
    counts = rng.choice([1, 2, 3, 4, 5], n, p=[0.35, 0.30, 0.20, 0.10, 0.05])
    demo_rows: list[dict] = []
    med_rows: list[dict] = []
    truth_rows: list[tuple] = []
    adult_cut = date(2000, 1, 1).toordinal()
    # drawn in bulk: one weighted numpy draw per person would dominate the run time
    married_names = rng.choice(pop.last_names, n, p=pop.pl)
    new_phones = pop._phones(n)
    new_streets = rng.choice(pop.last_names, n)
    for i in range(n):
        adult_woman = cols["sex"][i] == "F" and cols["dob"][i] < adult_cut
        married = adult_woman and rnd.random() < cfg.married_rate
        moved = rnd.random() < cfg.move_rate
        state = {
            "married_name": str(married_names[i]) if married else None,
            "moved": moved,
            "new_address": _new_address(pop, i, rnd, str(new_streets[i])) if moved else None,
            "new_phone": int(new_phones[i]) if rnd.random() < 0.2 else None,
            "history": writer.history(),
        }
        systems = rnd.sample(SOURCE_SYSTEMS, min(int(counts[i]), len(SOURCE_SYSTEMS)))
        systems += [rnd.choice(SOURCE_SYSTEMS) for _ in range(int(counts[i]) - len(systems))]
        for system in systems:
            record_id = f"R{len(demo_rows):07d}"
            row, medical = writer.write(i, record_id, system, state)
            demo_rows.append(row)
            if medical:
                med_rows.append(medical)
            truth_rows.append((record_id, f"P{i:07d}", cols["family"][i], cols["relation"][i]))
    order = rng.permutation(len(demo_rows))
    demographics = pd.DataFrame(demo_rows).iloc[order].reset_index(drop=True)
    truth = pd.DataFrame(truth_rows, columns=list(TRUTH_COLUMNS)).iloc[order].reset_index(drop=True)
    medical = pd.DataFrame(med_rows, columns=["record_id", "conditions", "medications"])
    return SyntheticData(demographics=demographics, medical=medical, truth=truth)
