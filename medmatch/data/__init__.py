"""Patient records, their normalisation, and a synthetic data generator with ground truth."""

from medmatch.data.models import (
    Demographics,
    FieldWarning,
    MedicalData,
    PatientRecord,
    parse_record,
)

__all__ = ["Demographics", "FieldWarning", "MedicalData", "PatientRecord", "parse_record"]
