from datetime import date

import pytest

from medmatch.data import clinical, codes, contact, dates, names
from medmatch.errors import InvalidValueError


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("José", "jose"),
        ("  O'Brien ", "obrien"),
        ("GARCÍA-LÓPEZ", "garcia lopez"),
        ("Zoë", "zoe"),
        ("", None),
        (None, None),
        ("!!", None),
    ],
)
def test_fold(raw, folded):
    assert names.fold(raw) == folded


def test_ascii_text_has_no_accents_to_strip():
    # what fold's ASCII fast path relies on: no ASCII character decomposes or combines
    every_ascii = "".join(map(chr, range(128)))
    assert names._strip_accents(every_ascii) == every_ascii
    assert (
        names.fold("Jose O'Brien-Smith") == names.fold("José O'Brien-Smith") == "jose obrien smith"
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Smith Jr.", ("Smith", "JR")),
        ("Smith, Sr", ("Smith", "SR")),
        ("King III", ("King", "III")),
        ("Smith", ("Smith", None)),
        ("Junior", ("Junior", None)),
        (None, (None, None)),
    ],
)
def test_split_suffix_keeps_generations_apart(raw, expected):
    assert names.split_suffix(raw) == expected


def test_suffix_spellings():
    assert names.normalise_suffix("junior") == "JR"
    assert names.normalise_suffix("3rd") == "III"
    assert names.normalise_suffix("Esq") == "ESQ"
    assert names.normalise_suffix(None) is None


def test_nicknames_come_from_the_curated_dataset():
    assert set(names.name_group("Bill")) & set(names.name_group("William"))
    assert set(names.name_group("Peggy")) & set(names.name_group("Margaret"))
    assert not set(names.name_group("John")) & set(names.name_group("Mary"))
    assert names.name_group(None) is None


def test_soundex():
    assert names.soundex("Smith") == names.soundex("Smythe") == "S530"
    assert names.soundex("O'Brien") == names.soundex("OBrien")
    assert names.soundex(None) is None
    assert names.soundex("123") is None


@pytest.mark.parametrize(
    "raw",
    [
        "1980-03-04",
        "19800304",
        "03/04/1980",
        "03-04-1980",
        "04.03.1980",
        "1980/03/04",
        "Mar 4 1980",
        "4 March 1980",
        "1980-03-04T00:00:00",
    ],
)
def test_date_formats(raw):
    assert dates.parse_date_of_birth(raw) == date(1980, 3, 4)


def test_day_first_slash_date_when_first_number_cannot_be_a_month():
    assert dates.parse_date_of_birth("25/12/1980") == date(1980, 12, 25)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("1980-02-31", "not a calendar date"),
        ("31.02.1980", "not a calendar date"),
        ("yesterday", "unrecognised"),
        ("2999-01-01", "future"),
        ("1700-01-01", "1880"),
    ],
)
def test_bad_dates_are_errors_without_the_value(raw, reason):
    with pytest.raises(InvalidValueError) as info:
        dates.parse_date_of_birth(raw)
    assert reason in str(info.value)
    assert raw not in str(info.value)


def test_day_month_swap_is_detectable():
    assert dates.is_day_month_swap(date(1980, 3, 4), date(1980, 4, 3))
    assert not dates.is_day_month_swap(date(1980, 3, 3), date(1980, 3, 3))
    assert dates.parse_date_of_birth(None) is None
    assert dates.parse_date_of_birth("  ") is None
    assert dates.parse_date_of_birth(date(1990, 1, 1)) == date(1990, 1, 1)


@pytest.mark.parametrize(
    "raw",
    [
        "(617) 555-0123",
        "617-555-0123",
        "6175550123",
        "+1 617 555 0123",
        "617.555.0123",
        "617-555-0123 ext 12",
    ],
)
def test_phone_formats(raw):
    assert contact.normalise_phone(raw) == "+16175550123"


def test_phone_other_countries():
    assert contact.normalise_phone("+44 20 7946 0958") == "+442079460958"
    assert contact.normalise_phone("020 7946 0958", "GB") == "+442079460958"


@pytest.mark.parametrize("raw", ["call-me-later", "abcdefg", "555", "1-800-FLOWERS"])
def test_bad_phones_are_errors(raw):
    with pytest.raises(InvalidValueError):
        contact.normalise_phone(raw)


def test_email():
    assert contact.normalise_email(" Ann.Lee@Example.ORG ") == "ann.lee@example.org"
    assert contact.normalise_email("") is None
    for bad in ("ann", "ann@", "a@b", "a..b@example.com"):
        with pytest.raises(InvalidValueError):
            contact.normalise_email(bad)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("02139", "02139"),
        ("02139-4307", "02139"),
        ("sw1a 1aa", "SW1A1AA"),
        ("K1A 0B1", "K1A0B1"),
        ("75008", "75008"),
        ("10115", "10115"),
        ("", None),
        (None, None),
    ],
)
def test_postcodes_of_any_country(raw, expected):
    assert contact.normalise_postal_code(raw) == expected


def test_bad_postcode():
    with pytest.raises(InvalidValueError):
        contact.normalise_postal_code("12")
    with pytest.raises(InvalidValueError):
        contact.normalise_postal_code("ABC$%")


def test_address_abbreviations():
    assert contact.normalise_address("12 Main Street, Apt 4") == contact.normalise_address(
        "12 main st apt 4"
    )
    assert contact.normalise_address("5 North Oak Avenue #2") == "5 n oak ave apt 2"
    assert contact.normalise_address(None) is None


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("M", "M"),
        ("female", "F"),
        ("2", "F"),
        ("1", "M"),
        ("U", None),
        ("other", "O"),
        (None, None),
    ],
)
def test_sex_codes(raw, code):
    assert codes.normalise_sex(raw) == code


def test_bad_sex_code():
    with pytest.raises(InvalidValueError):
        codes.normalise_sex("banana")


def test_ssn():
    assert codes.normalise_ssn("123-45-6789") == "123456789"
    assert codes.normalise_ssn("") is None
    for bad in ("12345", "000-12-3456", "666-12-3456", "900-12-3456", "123-00-4567", "abc-de-fghi"):
        with pytest.raises(InvalidValueError):
            codes.normalise_ssn(bad)
    assert codes.normalise_identifier(" mrn1 ") == "MRN1"
    assert codes.normalise_identifier(" ") is None


def test_clinical_vocabulary_maps_synonyms_brands_and_indications():
    assert clinical.condition_concepts(["T2DM"]) == clinical.condition_concepts(
        ["Type 2 Diabetes Mellitus"]
    )
    assert clinical.condition_concepts(["HTN"]) == {"hypertension"}
    assert clinical.drug_concepts(["Glucophage 500 mg"]) == clinical.drug_concepts(["metformin"])
    assert "type_2_diabetes" in clinical.implied_conditions(frozenset({"metformin"}))
    assert clinical.split_terms("T2DM; HTN | asthma") == ["T2DM", "HTN", "asthma"]
    assert clinical.split_terms(None) == []
    assert clinical.condition_concepts(["something rare"]) == {"something rare"}


def test_north_american_fast_path_equals_phonenumbers():
    import random

    import phonenumbers

    rnd = random.Random(7)
    for _ in range(3000):
        national = (
            f"{rnd.randrange(200, 1000)}{rnd.randrange(0, 1000):03d}{rnd.randrange(10000):04d}"
        )
        parsed = phonenumbers.parse("+1" + national, None)
        expected = phonenumbers.is_valid_number(parsed)
        try:
            got = contact.normalise_phone(national) == "+1" + national
        except InvalidValueError:
            got = False
        assert got == expected, national
    assert contact.normalise_phone("1 617 555 0123") == "+16175550123"
    assert contact.normalise_phone("+1 (617) 555-0123", "GB") == "+16175550123"
