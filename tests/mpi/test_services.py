"""The MPI services on a real PostgreSQL."""

import pytest

from medmatch.data.models import parse_record
from medmatch.errors import ConflictError, NotFoundError
from medmatch.matching import PatientMatcher
from medmatch.mpi.services import GoldenRecordService, MatchingService, ReviewService


def _record(source="EHR", external_id=None, **demo):
    base = {
        "name_first": "Maria",
        "name_last": "Garcia",
        "date_of_birth": "1975-04-12",
        "gender": "F",
        "phone": "617-555-0143",
        "address_line": "12 Main Street",
        "postal_code": "02139",
    }
    record, _ = parse_record(
        {
            "source_system": source,
            "external_id": external_id,
            "demographics": base | demo,
            "medical_data": {"conditions": ["T2DM"]},
        }
    )
    return record


@pytest.fixture
def services(uow_factory, trained):
    matcher = PatientMatcher(trained)
    return (
        MatchingService(uow_factory, matcher),
        GoldenRecordService(uow_factory),
        ReviewService(uow_factory),
    )


def test_lookup_links_the_same_person_and_keeps_others_apart(services):
    matching, golden, _ = services
    first = matching.lookup(_record("EHR", "1"))
    assert first.decision == "new_identity" and first.created
    second = matching.lookup(_record("LAB", "9", name_first="Mria"))
    assert second.decision == "auto_match" and second.golden_record_id == first.golden_record_id
    again = matching.lookup(_record("EHR", "1", phone="617-555-0199"))
    assert not again.created and again.source_record_id == first.source_record_id
    assert again.golden_record_id == first.golden_record_id
    sister = matching.lookup(_record("EHR", "2", name_first="Elena"))
    assert sister.golden_record_id != first.golden_record_id
    view = golden.get(first.golden_record_id)
    assert view.source_count == 2 and view.demographics["name_first"] == "Maria"
    assert "+16175550199" in view.demographics["phones"]
