from datetime import date

import pytest

from medmatch.data import parse_record
from medmatch.errors import InvalidFieldError
from tests.conftest import lookup_body


def test_record_is_normalised():
    record, warnings = parse_record(
        lookup_body(
            name_first=" José ",
            name_last="García Jr.",
            date_of_birth="03/04/1980",
            gender="female",
            phone="(617) 555-0123",
            postal_code="02139-4307",
            ssn="123-45-6789",
            record_id="r1",
            medical_data={"conditions": "T2DM; HTN", "medications": ["metformin"]},
        )
    )
    d = record.demographics
    assert (d.name_first, d.name_last, d.name_suffix) == ("José", "García", "JR")
    assert d.date_of_birth == date(1980, 3, 4)
    assert (d.gender, d.phone, d.postal_code, d.ssn) == ("F", "+16175550123", "02139", "123456789")
    assert record.medical_data.conditions == ["T2DM", "HTN"]
    assert record.key == "r1"
    assert warnings == []


def test_strict_mode_names_the_field_and_hides_the_value():
    with pytest.raises(InvalidFieldError) as info:
        parse_record(lookup_body(name_last="Lee", date_of_birth="1980-02-31"))
    assert info.value.field == "demographics.date_of_birth"
    assert "1980" not in str(info.value)


def test_strict_mode_rejects_a_phone_of_letters():
    with pytest.raises(InvalidFieldError) as info:
        parse_record(lookup_body(name_last="Lee", phone="call-me"))
    assert info.value.field == "demographics.phone"


def test_lenient_mode_drops_bad_values_with_a_warning():
    record, warnings = parse_record(
        lookup_body(name_last="Lee", date_of_birth="1980-02-31", phone="abc", record_id="r9"),
        lenient=True,
    )
    assert record.demographics.date_of_birth is None
    assert record.demographics.phone is None
    assert {(w.field, w.record_id) for w in warnings} == {("date_of_birth", "r9"), ("phone", "r9")}


def test_a_record_needs_a_name_and_a_source():
    with pytest.raises(InvalidFieldError) as info:
        parse_record(lookup_body(date_of_birth="1980-01-01"))
    assert "name" in info.value.reason
    with pytest.raises(InvalidFieldError) as info:
        parse_record({"demographics": {"name_last": "Lee"}})
    assert info.value.field == "source_system"


def test_key_falls_back_to_source_and_external_id():
    record, _ = parse_record(lookup_body(name_last="Lee", external_id="E1", source_system="LAB"))
    assert record.key == "LAB:E1"
    anonymous, _ = parse_record(lookup_body(name_last="Lee"))
    with pytest.raises(InvalidFieldError):
        _ = anonymous.key
