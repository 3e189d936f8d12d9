"""The review console in a real browser: sign in, resolve pairs by keyboard while a colleague
watches the queue, split a golden record, follow a batch run to 100%."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.api.conftest import record
from tests.console.conftest import sign_in

PEOPLE = {  # synthetic people, each unlike the others
    "C1": {"name_first": "Maria", "name_last": "Garcia", "date_of_birth": "1975-04-12"},
    "C2": {
        "name_first": "Ruth",
        "name_last": "Okafor",
        "date_of_birth": "1961-09-03",
        "phone": "312-555-0199",
        "address_line": "7 Lake Drive",
        "postal_code": "60601",
    },
}


def _pending_pair(api, tokens, tag):
    """Two records of one person, different enough to need a reviewer."""
    person = PEOPLE[tag]
    day = person["date_of_birth"]
    variant = {
        "name_first": person["name_first"][:3] + "y",
        "phone": None,
        "postal_code": "02140",
        "date_of_birth": day[:8] + day[9] + day[8],  # the day's digits swapped
        "address_line": "40 Elm Road",
    }
    with api.client(tokens["operator"]) as http:
        a = http.post("/api/v1/patients", json=record("EHR", f"{tag}-a", **person))
        b = http.post("/api/v1/patients", json=record("LAB", f"{tag}-b", **(person | variant)))
    match = b.json()["match"]
    assert match["decision"] == "review_required", match
    return a.json()["patient"], b.json()["patient"], match["review_ids"][0]


def _row(page, review_id):
    return page.locator(f'#queue-rows tr[data-review-id="{review_id}"]')


def test_the_console_is_static_files_under_a_strict_policy(api, tokens):
    with api.client() as http:
        assert http.get("/console", follow_redirects=False).headers["location"] == "/console/"
        page = http.get("/console/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert page.headers["referrer-policy"] == "no-referrer"
        assert http.get("/console/console.js").headers["content-type"].startswith("text/javascript")
        assert http.get("/console/console.css").status_code == 200
        assert http.get("/console/missing.js").status_code == 404
        assert http.get("/console/__init__.py").status_code == 404
        assert http.get("/console/..%2Fmain.py").status_code == 404
        assert http.get("/api/v1/me").status_code == 401
    with api.client(tokens["operator"]) as http:
        me = http.get("/api/v1/me").json()
    assert me["name"] == "operator@example.org" and me["role"] == "operator"
    assert {"review", "curate", "batch"} <= set(me["permissions"]) and "tokens" not in me[
        "permissions"
    ]


def test_sign_in_keeps_the_token_in_the_tab_and_out_of_the_url(console, tokens):
    page = console()
    sign_in(page, "mm_not-a-token")
    expect(page.get_by_role("status").first).to_be_visible()
    expect(page.locator("#message")).to_have_text("That token was not accepted.")
    sign_in(page, tokens["source"])
    expect(page.locator("#message")).to_contain_text("cannot use the review console")
    sign_in(page, tokens["reviewer"])
    expect(page.get_by_role("heading", name="Review queue")).to_be_visible()
    expect(page.locator("#who-name")).to_have_text("reviewer@example.org")
    expect(page.locator("#live")).to_have_text("live")
    assert tokens["reviewer"] not in page.url
    assert page.evaluate("sessionStorage.getItem('medmatch.token')") == tokens["reviewer"]
    page.reload()  # the tab remembers the token
    expect(page.locator("#who-name")).to_have_text("reviewer@example.org")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('medmatch.token')") is None


def test_without_the_script_the_token_still_stays_out_of_the_url(browser, api, tokens):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{api.base}/console/")
    page.get_by_label("Token").fill(tokens["reviewer"])
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    assert page.url == f"{api.base}/console/"  # posted, not sent as ?token=
    context.close()


def test_a_pair_resolved_by_keyboard_leaves_a_colleagues_queue(console, api, tokens, screenshot):
    left, right, review_id = _pending_pair(api, tokens, "C1")
    alice, bob = console(tokens["reviewer"]), console(tokens["reviewer2"])
    expect(_row(bob, review_id)).to_have_count(1)
    # keyboard only: tab to the pair's Review button, Enter, then M
    alice.locator("#queue-title").focus()
    button = _row(alice, review_id).get_by_role("button", name=f"Review pair #{review_id}")
    for _ in range(40):
        alice.keyboard.press("Tab")
        if button.evaluate("b => b === document.activeElement"):
            break
    alice.keyboard.press("Enter")
    expect(
        alice.get_by_role("heading", name=re.compile(f"Review pair #{review_id}"))
    ).to_be_focused()
    expect(_row(bob, review_id)).to_have_count(0)  # taken by Alice: gone from Bob's queue

    compare = alice.locator("#compare-rows")
    expect(compare.locator("tr.differs", has_text="First name")).to_contain_text("Maria")
    expect(compare.locator("tr.differs", has_text="First name")).to_contain_text("Mary")
    expect(compare.locator("tr.same", has_text="Surname")).to_contain_text("Garcia")
    expect(compare.locator("tr.missing", has_text="Phone")).to_have_count(1)
    with api.client(tokens["reviewer"]) as http:
        item = http.get(f"/api/v1/matching/results/{_match_id(http, review_id)}").json()
    bars = item["evidence"]["waterfall"]
    expect(alice.locator(".bars li:not(.total)")).to_have_count(len(bars))
    total = sum(b["match_weight"] + b.get("tf_adjustment", 0) for b in bars)
    expect(alice.locator(".bars li.total")).to_contain_text(f"{total:.2f}")
    shown = float(alice.locator(".bars li.total").get_attribute("data-probability"))
    assert abs(shown - item["confidence"]) < 1e-9  # the bars add up to the stored probability
    expect(alice.locator("#ai-card")).to_be_visible()
    expect(alice.locator("#ai-reasoning")).to_have_text(item["ai_reasoning"].rstrip(".") + ".")
    screenshot(alice, "console-pair.png")

    alice.keyboard.press("m")
    expect(alice.locator("#message")).to_have_text(f"Pair #{review_id} confirmed as a match.")
    expect(_row(alice, review_id)).to_have_count(0)
    with api.client(tokens["reviewer"]) as http:
        after = http.get(f"/api/v1/patients/{right['id']}").json()
    assert after["golden_record_id"] == left["golden_record_id"]


def test_defer_needs_a_note_and_puts_the_pair_back_for_everyone(console, api, tokens):
    _, _, review_id = _pending_pair(api, tokens, "C2")
    alice, bob = console(tokens["reviewer"]), console(tokens["reviewer2"])
    _row(alice, review_id).get_by_role("button").click()
    expect(alice.locator("#pair-title")).to_be_focused()
    expect(_row(bob, review_id)).to_have_count(0)
    alice.keyboard.press("d")  # no note yet: asked for one, nothing resolved
    expect(alice.locator("#note")).to_be_focused()
    expect(alice.locator("#message")).to_contain_text("Add a note")
    alice.keyboard.type("need the referral letter")
    alice.keyboard.press("Escape")
    alice.keyboard.press("d")
    expect(alice.locator("#message")).to_have_text(f"Pair #{review_id} deferred.")
    expect(_row(bob, review_id)).to_have_count(1)  # back in the queue, live
    # Bob's live feed drops; meanwhile Alice takes the pair again: his stale row answers 409
    bob.evaluate("() => { const s = state.events; state.events = null; s.close(); }")
    expect(bob.locator("#live")).to_have_text("offline")
    with api.client(tokens["reviewer"]) as http:
        again = http.post(
            f"/api/v1/review/{review_id}/assign", json={"assigned_to": "reviewer@example.org"}
        )
    assert again.json()["resolver_notes"] == "need the referral letter"
    _row(bob, review_id).get_by_role("button").click()
    expect(bob.locator("#message")).to_have_text(f"Pair #{review_id} was taken by a colleague.")
    expect(_row(bob, review_id)).to_have_count(0)


def _match_id(http, review_id):
    item = http.post(
        f"/api/v1/review/{review_id}/assign", json={"assigned_to": "reviewer@example.org"}
    )
    return item.json()["match"]["id"]


def test_an_operator_splits_a_golden_record(console, api, tokens, screenshot):
    with api.client(tokens["operator"]) as http:
        a = http.post(
            "/api/v1/patients", json=record("EHR", "S-a", name_first="Ana", name_last="Lopez")
        ).json()
        b = http.post(
            "/api/v1/patients",
            json=record(
                "LAB",
                "S-b",
                name_first="Ana",
                name_last="Lopez",
                phone=None,
                email="ana@example.org",
            ),
        ).json()
        ga, gb = a["patient"]["golden_record_id"], b["patient"]["golden_record_id"]
        if ga != gb:
            http.post(
                "/api/v1/golden-records/merge", json={"golden_record_ids": [ga, gb]}
            ).raise_for_status()
    golden_id, moved = ga, b["patient"]["id"]

    reviewer = console(tokens["reviewer"])
    reviewer.get_by_role("button", name="Golden records").click()
    reviewer.get_by_label("Golden record id").fill(golden_id)
    reviewer.get_by_role("button", name="Open").click()
    expect(reviewer.locator("#source-rows tr")).to_have_count(2)
    expect(reviewer.get_by_role("button", name="Split selected records")).to_be_hidden()
    expect(reviewer.locator("#split-denied")).to_be_visible()

    page = console(tokens["operator"])
    page.get_by_role("button", name="Golden records").click()
    page.get_by_label("Golden record id").fill(golden_id.lower())
    page.keyboard.press("Enter")
    expect(page.locator("#golden-heading")).to_contain_text(f"{golden_id} (active")
    email = page.locator("#survivor-rows tr", has_text="Email")
    expect(email).to_contain_text("ana@example.org")
    expect(email).to_contain_text(f"LAB #{moved}")  # the source of the survivor value
    page.get_by_label(f"Select LAB #{moved}").check()
    page.get_by_label("Reason for the split").fill("different mothers' names on file")
    screenshot(page, "console-golden.png")
    with api.client(tokens["source"]) as http:  # a change this screen has not seen
        http.post(
            "/api/v1/patients",
            json=record("EHR", "S-a", name_first="Ana", name_last="Lopez", city="Salem"),
        ).raise_for_status()
    page.get_by_role("button", name="Split selected records").click()
    expect(page.locator("#message")).to_contain_text("Split refused: golden record")
    expect(page.locator("#message")).to_contain_text("changed since it was read")
    page.get_by_label(f"Select LAB #{moved}").check()  # the view was read again
    page.get_by_role("button", name="Split selected records").click()
    expect(page.locator("#message")).to_contain_text(f"Moved #{moved} to the new golden record GR-")
    expect(page.locator("#source-rows tr")).to_have_count(1)
    expect(reviewer.locator("#source-rows tr")).to_have_count(1)  # live on a colleague's screen
    with api.client(tokens["operator"]) as http:
        new_id = http.get(f"/api/v1/patients/{moved}").json()["golden_record_id"]
    assert new_id != golden_id
    expect(page.locator("#message")).to_contain_text(new_id)
    page.get_by_label("Golden record id").fill("GR-999999")
    page.keyboard.press("Enter")
    expect(page.locator("#message")).to_have_text("No golden record GR-999999.")


def test_an_operator_follows_a_batch_run_to_100_percent(console, api, tokens, screenshot):
    reviewer = console(tokens["reviewer"])
    reviewer.get_by_role("button", name="Batch runs").click()
    expect(reviewer.get_by_role("button", name="Start run")).to_be_disabled()
    reviewer.get_by_label("Job id").fill("no-such-run")
    reviewer.get_by_role("button", name="Follow").click()
    expect(reviewer.locator("#run-text")).to_have_text("No batch job no-such-run.")

    page = console(tokens["operator"])
    page.get_by_role("button", name="Batch runs").click()
    page.get_by_label("Job", exact=True).select_option("incremental_match")
    page.get_by_role("button", name="Start run").click()  # no landing batch named
    expect(page.locator("#message")).to_contain_text("The run was not started")
    page.get_by_label("Job", exact=True).select_option("full_match")
    page.get_by_role("button", name="Start run").click()
    expect(page.locator("#message")).to_contain_text("started")
    progress = page.get_by_role("progressbar")
    expect(progress).to_have_attribute("value", re.compile(r"^[1-9]\d*$"), timeout=60_000)
    expect(page.locator("#run")).to_have_attribute("data-status", "completed", timeout=120_000)
    expect(progress).to_have_attribute("value", "100")
    expect(page.locator("#run-text")).to_contain_text("completed")
    job_id = page.get_by_label("Job id").input_value()
    with api.client(tokens["operator"]) as http:
        status = http.get(f"/api/v1/matching/batch/{job_id}").json()
    assert status["status"] == "completed"
    expect(page.locator("#run-text")).to_contain_text(
        f"{status['processed_records']} of {status['total_records']} records"
    )
    screenshot(page, "console-batch.png")
