"""Each monitoring rule the issue asks for fires when it should, and not when it should not."""

from __future__ import annotations

from helpers import ORPHAN, WORKER, Driver, household, rules_of


def test_income_falling_by_half_within_3_months_is_orange(monitor):
    d = Driver(monitor)
    d.register("2021-08-01", household(WORKER))
    # wage 1400 -> 600: per-capita income 700 -> 300, within 2 months
    alerts = d.send("income_change", "2021-10-01", member="p1", income_type="wage", monthly="600")
    (a,) = [x for x in alerts if x["rule"] == "monitor.income_halved"]
    assert a["level"] == "orange" and a["level_zh"] == "橙"
    assert "700.00元" in a["text"] and "300.00元" in a["text"]
    assert "项目默认值" in a["citation"]
    # the same fall spread over more than 3 months raises nothing
    d2 = Driver(monitor, "T-2")
    d2.register("2021-08-01", household(WORKER))
    assert "monitor.income_halved" not in rules_of(d2.send("income_change", "2021-11-05", member="p1", income_type="wage", monthly="600"))


def test_income_falling_by_less_than_half_is_not_alerted(monitor):
    d = Driver(monitor)
    d.register("2021-08-01", household(WORKER))
    assert "monitor.income_halved" not in rules_of(d.send("income_change", "2021-09-01", member="p1", income_type="wage", monthly="800"))


def test_two_hospitalisations_within_6_months_once_per_second_stay(monitor):
    d = Driver(monitor)
    d.register("2021-08-01", household(WORKER))
    assert d.send("hospitalisation", "2021-09-01", member="p2", cost="3000") == []
    (a,) = d.send("hospitalisation", "2022-01-15", member="p2", cost="5000")
    assert a["rule"] == "monitor.hospitalised_twice" and a["member"] == "p2" and a["level"] == "orange"
    assert "2021-09-01" in a["text"] and "5000.00元" in a["text"]
    # a third stay matches both earlier ones: still one alert (its key is the new stay)
    third = d.send("hospitalisation", "2022-02-01", member="p2", cost="100")
    assert rules_of(third) == ["monitor.hospitalised_twice"]
    # more than 6 months after the last one: nothing
    assert d.send("hospitalisation", "2022-09-01", member="p2", cost="100") == []


def test_a_loss_beyond_3_months_of_income_is_red_and_finds_temporary_assistance(monitor):
    d = Driver(monitor)
    d.register("2021-08-01", household(WORKER))
    small = d.send("disaster", "2021-09-01", cause="flood", loss="4000")  # 3 months of 1400 = 4200
    assert "monitor.loss_beyond_income" not in rules_of(small)
    big = d.send("accident", "2021-09-10", cause="traffic_accident", loss="30000")
    by_rule = {a["rule"]: a for a in big}
    assert by_rule["monitor.loss_beyond_income"]["level"] == "red"
    assert "交通事故" in by_rule["monitor.loss_beyond_income"]["text"]
    temp = by_rule["monitor.may_qualify_temporary"]
    assert temp["level"] == "red"
    programs = {p["program"]: p for p in temp["determinations"]["after"]["programs"]}
    assert programs["temporary"]["status"] == "eligible"
    before = {p["program"]: p for p in temp["determinations"]["before"]["programs"]}
    assert before["temporary"]["status"] == "ineligible"


def test_a_tekun_minor_turning_18_at_school_is_yellow(monitor):
    d = Driver(monitor)
    d.register("2021-08-01", household(ORPHAN))
    assert d.send("tick", "2022-04-30") == []
    (a,) = d.send("tick", "2022-05-02")
    assert a["rule"] == "monitor.tekun_minor_18_in_school" and a["level"] == "yellow" and a["member"] == "c1"
    assert "2022-05-01" in a["text"] and "普通高中" in a["text"]
    assert d.send("tick", "2022-06-01") == []  # once


def test_a_tekun_minor_turning_18_out_of_school_is_red(monitor):
    d = Driver(monitor)
    d.register("2021-08-01", household(ORPHAN))
    d.send("school_left", "2022-01-10", member="c1")
    alerts = d.send("tick", "2022-05-01")
    assert rules_of(alerts) == ["monitor.tekun_minor_18_not_in_school"]
    assert alerts[0]["level"] == "red"


def test_members_turning_60_and_80(monitor):
    d = Driver(monitor)
    rec = household(WORKER)
    rec["members"].append({"id": "g1", "relation": "grandparent", "birth_date": "1942-02-10", "hukou_locality": "210102", "supporters": "able"})
    rec["members"][0]["birth_date"] = "1962-01-20"
    d.register("2021-08-01", rec)
    turned = d.send("tick", "2022-03-01")
    assert sorted((a["rule"], a["member"]) for a in turned) == [("monitor.member_turns_60", "p1"), ("monitor.member_turns_80", "g1")]
    assert d.send("tick", "2022-04-01") == []


def test_a_gradual_exit_that_ends_is_alerted(monitor):
    d = Driver(monitor)
    rec = household(WORKER, current_benefits=["dibao"], current_amounts={"dibao": "300.00"})
    rec["members"][0]["incomes"] = [{"type": "wage", "monthly": "1000.00"}]  # per capita 500 < 672
    d.register("2021-08-01", rec)
    entered = d.send("income_change", "2021-09-01", member="p1", income_type="wage", monthly="1500")  # 750: 渐退
    assert "monitor.entered_gradual_exit" in rules_of(entered)
    assert "monitor.gradual_exit_ends" not in rules_of(d.send("tick", "2022-02-28"))
    ended = d.send("tick", "2022-03-02")
    assert "monitor.gradual_exit_ends" in rules_of(ended)
    (a,) = [x for x in ended if x["rule"] == "monitor.gradual_exit_ends"]
    assert "2022-03-01" in a["text"] and "6个月" in a["text"]


def test_periodic_reviews_every_6_months_for_working_dibao_households_yearly_for_tekun(monitor):
    d = Driver(monitor)
    rec = household(WORKER, current_benefits=["dibao"], current_amounts={"dibao": "300.00"})
    rec["members"][0]["incomes"] = [{"type": "wage", "monthly": "1000.00"}]
    d.register("2021-08-01", rec)
    assert d.send("tick", "2022-01-31") == []
    (a,) = d.send("tick", "2022-02-01")
    assert a["rule"] == "monitor.review_due" and "6个月" in a["text"] and "项目默认值" in a["citation"]
    d.send("review_completed", "2022-02-10")
    assert d.send("tick", "2022-08-09") == []
    assert rules_of(d.send("tick", "2022-08-10")) == ["monitor.review_due"]

    t = Driver(monitor, "T-2")
    t.register("2021-08-01", household(ORPHAN))
    alerts = t.send("tick", "2022-08-01")
    assert "monitor.review_due" in rules_of(alerts)
    assert "12个月" in next(a for a in alerts if a["rule"] == "monitor.review_due")["text"]
    assert "monitor.review_due" not in rules_of(Driver(monitor, "T-3").register("2021-08-01", household(WORKER)))


def test_newly_eligible_no_longer_eligible_and_amount_changed(monitor):
    d = Driver(monitor)
    first = d.register("2021-08-01", household(WORKER))
    assert rules_of(first) == ["monitor.may_qualify_edge"]  # per capita 700: above 672, below 1.5 x 672
    found = d.send("job_lost", "2021-09-01", member="p1")
    (a,) = [x for x in found if x["rule"] == "monitor.may_qualify_dibao"]
    assert "1344.00元" in a["text"]  # (672 - 0) x 2
    assert a["determinations"]["before"]["programs"][0]["status"] == "ineligible"
    assert a["determinations"]["after"]["programs"][0]["status"] == "eligible"
    d.send("benefit_started", "2021-10-01", program="dibao", monthly="1344")
    changed = d.send("income_change", "2021-11-01", member="p1", income_type="other", monthly="200")
    (c,) = [x for x in changed if x["rule"] == "monitor.amount_changed"]
    assert "1344.00元/月变为1144.00元/月" in c["text"]
    gone = d.send("job_found", "2021-12-01", member="p1", monthly="3000")
    assert "monitor.no_longer_eligible" in rules_of(gone)


def test_events_that_change_no_fact_are_not_re_evaluated(monitor):
    d = Driver(monitor)
    d.register("2021-08-01", household(WORKER))
    before = d.state.summary
    ev_alerts = d.send("hospitalisation", "2021-09-01", member="p1", cost="10")
    assert ev_alerts == [] and d.state.summary is before and d.state.record["as_of"] == "2021-08-01"


def test_an_event_that_changes_nothing_the_programs_read_is_not_re_evaluated(monitor):
    d = Driver(monitor)
    d.register("2021-08-01", household(WORKER))
    ev = d.monitor.process  # the child p2 has no job and no wage: losing one changes nothing
    from engine.monitor.events import parse_event

    out = ev(parse_event({"household_id": "T-1", "type": "job_lost", "date": "2021-09-01", "member": "p2"}), d.state)
    assert out.evaluated is False and out.state.record["as_of"] == "2021-08-01"
    out = ev(parse_event({"household_id": "T-1", "type": "job_lost", "date": "2021-09-01", "member": "p1"}), d.state)
    assert out.evaluated is True and out.state.record["as_of"] == "2021-09-01"
