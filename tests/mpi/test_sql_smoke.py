from medmatch.mpi.domain import Link


def test_upsert_link_and_candidates(uow_factory):
    with uow_factory() as uow:
        rec, created = uow.records.upsert("A", "1", {"name_last": "x"}, {}, {"first_name": "ann"})
        again, created2 = uow.records.upsert("A", "1", {"name_last": "y"}, {}, {"first_name": "an"})
        assert created and not created2 and again.id == rec.id
        uow.records.replace_keys(rec.id, ["k1", "k2"])
        g = uow.golden.create()
        assert g.golden_id == "GR-000001"
        uow.golden.set_link(Link(rec.id, g.golden_id, "new_identity", 1.0))
        other, _ = uow.records.upsert("B", None, {}, {}, {})
        found = uow.records.candidates(["k2", "k9"], exclude=other.id, limit=10)
        assert [f.id for f in found] == [rec.id] and found[0].golden_id == g.golden_id
        assert found[0].features["unique_id"] == str(rec.id)
        uow.commit()
