"""The pure dispatch scorer (workflow/dispatch.py), table-driven: who is picked, who is left out
and why, the overflow steps, VIP changes and the round-robin tie-break — no database."""

import pytest

from workflow.dispatch import (
    Candidate,
    Config,
    Place,
    dispatch_decide,
    distance_km,
    overflow_problems,
)

SHANGHAI = (31.2304, 121.4737)  # 人民广场
XUHUI = (31.1880, 121.4365)  # ~6 km away
PUDONG = (31.2215, 121.5440)  # ~7 km away
SUZHOU = (31.2990, 120.5853)  # ~85 km away
PLACE = Place(store_id=1, region_id=10, lat=SHANGHAI[0], lng=SHANGHAI[1])


def cand(uid, *, store=1, region=10, at=XUHUI, **kw):
    return Candidate(user_id=uid, name=f"工程师{uid}", store_ids=frozenset([store]) if store else frozenset(),
                     region_ids=frozenset([region]) if region else frozenset(), lat=at[0] if at else None,
                     lng=at[1] if at else None, **kw)


def run(cands, config=None, place=PLACE, rotation_after=None):
    return dispatch_decide(config or Config(), place, lambda step: cands, rotation_after=rotation_after)


def test_distance_is_great_circle():
    assert distance_km(*SHANGHAI, *SUZHOU) == pytest.approx(85, abs=3)
    assert distance_km(*SHANGHAI, *SHANGHAI) == 0
    assert distance_km(None, 1, 2, 3) is None


@pytest.mark.parametrize(("cands", "config", "picked", "excluded"), [
    # nearest wins when only distance counts
    ([cand(1, at=PUDONG), cand(2, at=XUHUI)], Config(w_distance=100, w_load=0, w_speed=0), 2, {}),
    # lightest load wins when only load counts
    ([cand(1, load=5, capacity=10), cand(2, load=1, capacity=10)], Config(w_distance=0, w_load=100, w_speed=0), 2,
     {}),
    # fastest over 3 days wins when only speed counts; unknown speed scores half
    ([cand(1, speed_minutes=40.0), cand(2, speed_minutes=12.0), cand(3)],
     Config(w_distance=0, w_load=0, w_speed=100), 2, {}),
    # off duty and full people are left out, with the reason
    ([cand(1, on_duty=False), cand(2, load=8, capacity=8), cand(3, load=7, capacity=8)], Config(), 3,
     {1: "off_duty", 2: "full"}),
    # filters switched off: off duty and full may be picked
    ([cand(1, on_duty=False, load=9, capacity=8)], Config(on_duty_only=False, under_capacity=False), 1, {}),
    # a missing skill excludes
    ([cand(1, skills=frozenset({7})), cand(2, skills=frozenset({7, 9}))], Config(skills=frozenset({9})), 2,
     {1: "no_skill"}),
])
def test_filters_and_weights(cands, config, picked, excluded):
    decision = run(cands, config)
    assert decision.picked.candidate.user_id == picked
    assert {s.candidate.user_id: s.excluded for s in decision.excluded} == excluded


def test_overflow_borrows_from_the_region_when_the_store_is_full():
    local = cand(1, load=8, capacity=8)
    neighbour = cand(2, store=2, at=PUDONG)
    decision = run([local, neighbour], Config(overflow=("store", "region", "tenant")))
    assert decision.picked.candidate.user_id == 2
    assert decision.step == "region" and decision.tried == ["store", "region"] and decision.overflowed
    assert [(s.candidate.user_id, s.step, s.excluded) for s in decision.excluded] == [(1, "store", "full")]


def test_nearby_step_reaches_only_within_the_radius():
    far = cand(1, store=5, region=50, at=SUZHOU)
    near = cand(2, store=6, region=60, at=PUDONG)
    decision = run([far, near], Config(overflow=("store", "region", "nearby"), radius_km=30))
    assert decision.picked.candidate.user_id == 2 and decision.step == "nearby"
    assert decision.ranked == [decision.picked]  # the far one was never reached
    nobody = run([far], Config(overflow=("store", "nearby"), radius_km=30))
    assert nobody.picked is None and nobody.excluded == [] and nobody.why_nobody == "nobody"


def test_tenant_step_reaches_everyone_left():
    decision = run([cand(1, store=9, region=90, at=SUZHOU)], Config(overflow=("store", "tenant")))
    assert decision.picked.candidate.user_id == 1 and decision.step == "tenant"


def test_nobody_eligible_gives_the_main_reason():
    decision = run([cand(1, load=3, capacity=3), cand(2, load=5, capacity=5), cand(3, on_duty=False)])
    assert decision.picked is None and decision.step is None
    assert decision.why_nobody == "full"


def test_no_location_is_not_a_crash():
    place = Place(store_id=1, region_id=10)  # neither ticket field nor store coordinates
    decision = run([cand(1, at=None), cand(2)], Config(overflow=("store", "nearby")), place=place)
    assert decision.picked is not None
    assert all(s.distance_km is None for s in decision.ranked)


@pytest.mark.parametrize(("senior_for", "tier", "picked", "excluded"), [
    ("vip", "vip", 2, {1: "not_senior"}),
    ("vip", "svip", 2, {1: "not_senior"}),
    ("svip", "vip", 1, {}),  # only SVIP is senior-only: the nearer junior wins
    ("vip", "normal", 1, {}),
])
def test_vip_senior_pool(senior_for, tier, picked, excluded):
    junior, senior = cand(1, at=XUHUI), cand(2, at=PUDONG, senior=True)
    place = Place(store_id=1, region_id=10, lat=XUHUI[0], lng=XUHUI[1], tier=tier)
    decision = run([junior, senior], Config(senior_for=senior_for, w_distance=100, w_load=0, w_speed=0), place)
    assert decision.picked.candidate.user_id == picked
    assert {s.candidate.user_id: s.excluded for s in decision.excluded} == excluded


def test_vip_bonus_lifts_senior_staff():
    junior, senior = cand(1, at=XUHUI), cand(2, at=PUDONG, senior=True)
    place = Place(store_id=1, region_id=10, lat=XUHUI[0], lng=XUHUI[1], tier="vip")
    config = Config(w_distance=50, w_load=0, w_speed=0, senior_bonus=60)
    decision = run([junior, senior], config, place)
    assert decision.picked.candidate.user_id == 2 and decision.picked.parts["senior"] == 60
    normal = run([junior, senior], config, Place(store_id=1, region_id=10, lat=XUHUI[0], lng=XUHUI[1]))
    assert normal.picked.candidate.user_id == 1


@pytest.mark.parametrize(("rotation_after", "round_robin", "picked"), [
    (None, True, 3), (3, True, 5), (5, True, 8), (8, True, 3), (5, False, 3)])
def test_round_robin_among_equal_scores(rotation_after, round_robin, picked):
    cands = [cand(5), cand(3), cand(8)]  # same place, load and speed
    decision = run(cands, Config(round_robin=round_robin), rotation_after=rotation_after)
    assert decision.picked.candidate.user_id == picked
    assert sorted(s.candidate.user_id for s in decision.ranked if s.tie) == sorted({3, 5, 8} - {picked})


def test_ranked_best_first_with_parts():
    decision = run([cand(1, load=6, capacity=8), cand(2, load=2, capacity=8), cand(3, load=4, capacity=8)],
                   Config(w_distance=0, w_load=100, w_speed=0))
    assert [s.candidate.user_id for s in decision.ranked] == [2, 3, 1]
    assert [s.score for s in decision.ranked] == [75.0, 50.0, 25.0]


@pytest.mark.parametrize(("overflow", "problems"), [
    (["store", "region", "nearby", "tenant"], []),
    (["store", "region", "store"], ["loop", "narrows"]),
    (["region", "store"], ["narrows"]),
    (["store", "moon"], ["unknown"]),
    ([], ["empty"]),
])
def test_overflow_problems(overflow, problems):
    assert overflow_problems(overflow) == problems
