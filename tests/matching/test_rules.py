from medmatch.matching.rules import RuleKind, evaluate_rules, medical_histories_conflict

BASE = {
    "first_name": "john",
    "first_name_group": ["john", "johnny"],
    "last_name": "smith",
    "dob": "1950-05-06",
    "sex": "M",
    "address": "12 main st",
    "phone": "+16175550123",
    "name_suffix": None,
    "ssn": None,
    "source_system": "A",
    "external_id": "1",
    "conditions": [],
    "medications": [],
}


def test_same_source_record_is_exact():
    hit = evaluate_rules(BASE, BASE | {"first_name": "jon"})
    assert hit.rule == "same_source_record" and hit.kind is RuleKind.EXACT


def test_same_identifier_and_dob_is_exact():
    hit = evaluate_rules(
        BASE | {"ssn": "123456789"}, BASE | {"ssn": "123456789", "external_id": "2"}
    )
    assert hit.rule == "same_identifier_and_dob"


def test_different_suffix_is_a_hard_negative_even_with_the_same_ssn():
    hit = evaluate_rules(
        BASE | {"name_suffix": "SR", "ssn": "1"},
        BASE | {"name_suffix": "JR", "ssn": "1", "external_id": "2"},
    )
    assert hit.rule == "different_suffix" and hit.kind is RuleKind.HARD_NEGATIVE


def test_father_and_son_without_suffix():
    hit = evaluate_rules(
        BASE | {"name_suffix": "SR"}, BASE | {"dob": "1978-02-01", "external_id": "2"}
    )
    assert hit.rule == "generational"


def test_a_mistyped_birth_year_is_not_a_generation():
    assert evaluate_rules(BASE, BASE | {"dob": "1905-05-06", "external_id": "2"}) is None


def test_twins_of_different_sex():
    sister = BASE | {
        "first_name": "mary",
        "first_name_group": ["mary", "molly"],
        "sex": "F",
        "external_id": "2",
    }
    assert evaluate_rules(BASE, sister).rule == "twins"


def test_same_sex_twins_with_conflicting_histories():
    brother = BASE | {
        "first_name": "jacob",
        "first_name_group": ["jacob", "jake"],
        "external_id": "2",
        "conditions": ["asthma"],
    }
    assert evaluate_rules(BASE | {"conditions": ["type_2_diabetes"]}, brother).rule == "twins"
    # same history: not enough to call them twins (could be a typo'd name)
    assert (
        evaluate_rules(
            BASE | {"conditions": ["asthma"]},
            brother | {"first_name": "johan", "first_name_group": ["johan"]},
        )
        is None
    )


def test_nickname_is_not_a_twin():
    assert evaluate_rules(BASE, BASE | {"first_name": "johnny", "external_id": "2"}) is None


def test_medical_conflict_uses_implied_conditions():
    a = {"conditions": ["type_2_diabetes"], "medications": []}
    b = {"conditions": [], "medications": ["metformin"]}
    assert not medical_histories_conflict(a, b)
    assert medical_histories_conflict(a, {"conditions": ["asthma"], "medications": []})
    assert not medical_histories_conflict(a, {"conditions": [], "medications": []})


def test_candidate_sql_is_a_superset_of_the_rules(trained, features, feature_rows):
    """Batch scoring skips the Python rules where CANDIDATE_SQL is false: it must never be
    false where a rule fires."""
    import logging

    from splink import DuckDBAPI, Linker

    from medmatch.matching.rules import CANDIDATE_SQL
    from medmatch.matching.training import splink_input

    settings = trained.splink_settings | {
        "retain_matching_columns": True,
        "additional_columns_to_retain": ["name_suffix"],
    }
    linker = Linker(DuckDBAPI().register(splink_input(features)), settings, log_level=logging.ERROR)
    predictions = linker.inference.predict()
    rows = linker.misc.query_sql(
        f"SELECT unique_id_l, unique_id_r, coalesce({CANDIDATE_SQL}, FALSE) AS c "
        f"FROM {predictions.physical_name}",
        output_type="pandas",
    )
    fired = 0
    for a, b, candidate in rows.itertuples(index=False):
        hit = evaluate_rules(
            feature_rows[a] | {"external_id": None}, feature_rows[b] | {"external_id": None}
        )
        if hit is not None:
            fired += 1
            assert candidate, (hit.rule, a, b)
    assert fired > 50


def test_twin_who_moved_away_and_namesakes():
    moved = BASE | {
        "first_name": "curtis",
        "first_name_group": ["curt", "curtis"],
        "address": "9 elm rd",
        "phone": "+13019660102",
        "external_id": "2",
    }
    assert evaluate_rules(BASE, moved).rule == "different_given_name"


def test_going_by_the_middle_name_is_not_a_different_person():
    known_as = BASE | {
        "first_name": "robert",
        "first_name_group": ["bob", "robert"],
        "address": "9 elm rd",
        "phone": None,
        "external_id": "2",
    }
    assert evaluate_rules(BASE | {"middle_name": "robert"}, known_as) is None


def test_household_member_with_missing_birth_date():
    brother = BASE | {
        "first_name": "eric",
        "first_name_group": ["eric", "rick"],
        "dob": None,
        "external_id": "2",
    }
    assert (
        evaluate_rules(
            BASE | {"first_name": "juan", "first_name_group": ["juan", "john"]}, brother
        ).rule
        == "household_member"
    )


def test_nickname_groups_do_not_relate_through_each_other():
    rick = BASE | {"first_name": "rick", "first_name_group": ["eric", "richard", "rick"]}
    aaron = BASE | {
        "first_name": "aaron",
        "first_name_group": ["aaron", "erin", "ron"],
        "external_id": "2",
    }
    assert evaluate_rules(rick, aaron).rule == "twins"
    carrie = BASE | {
        "first_name": "carrie",
        "first_name_group": ["carolyn", "carrie"],
        "external_id": "2",
    }
    assert (
        evaluate_rules(BASE | {"first_name": "caroyln", "first_name_group": ["caroyln"]}, carrie)
        is None
    )


def _woman(first: str, last: str, **extra) -> dict:
    from medmatch.data.names import name_group

    return (
        BASE
        | {
            "first_name": first,
            "first_name_group": list(name_group(first)),
            "last_name": last,
            "sex": "F",
            "dob": "1997-05-03",
        }
        | extra
    )


def test_a_surname_in_the_given_name_field_is_a_sister_not_a_swap():
    # 'Sandra Vaughan' sent as first=vaughan, last=sandra, beside her twin Helen Vaughan
    sandra = _woman("vaughan", "sandra")
    helen = _woman("helen", "vaughan", external_id="2")
    assert evaluate_rules(sandra, helen).rule == "twins"


def test_swapped_names_with_a_typo_or_a_new_surname_are_one_person():
    # both ways, typos allowed
    typo = evaluate_rules(
        _woman("regina", "mcpherson"), _woman("mcphershon", "regna", external_id="2")
    )
    assert typo is None
    # one way: the swapped side's given name is a known given name, the surname changed
    married = evaluate_rules(_woman("garcia", "sharon"), _woman("sharon", "brown", external_id="2"))
    assert married is None
    nickname = evaluate_rules(_woman("lewis", "mae"), _woman("mary", "graham", external_id="2"))
    assert nickname is None


def test_unrelated_given_names_and_birth_dates_are_two_people():
    other = BASE | {
        "first_name": "brian",
        "first_name_group": ["brian"],
        "last_name": "yoder",
        "dob": "1988-08-27",
        "external_id": "2",
    }
    hit = evaluate_rules(BASE, other)
    assert hit.rule == "different_person" and hit.kind is RuleKind.HARD_NEGATIVE

    # a shared SSN, or a birth date one typo away, leaves the pair to the score
    def rule(left, right):
        hit = evaluate_rules(left, right)
        return hit.rule if hit else None

    assert rule(BASE | {"ssn": "1"}, other | {"ssn": "1"}) != "different_person"
    assert rule(BASE, other | {"dob": "1950-05-08"}) != "different_person"
    assert rule(BASE, other | {"dob": None}) != "different_person"
