"""The parts that keep endpoints apart on shared delivery queues."""

from __future__ import annotations

import threading

from hub.broker.topology import Lane
from hub.isolation import HELD_HEADER, BurstMeter, EndpointSlots, HoldPolicy, times_held


def test_an_endpoint_takes_no_more_slots_than_its_bound_and_others_are_unaffected():
    slots = EndpointSlots(per_endpoint=2)
    assert slots.try_take("slow@1")
    assert slots.try_take("slow@1")
    assert not slots.try_take("slow@1")
    assert slots.try_take("fast@2")
    slots.give_back("slow@1")
    assert slots.in_use("slow@1") == 1
    assert slots.try_take("slow@1")


def test_slots_hold_under_threads():
    slots = EndpointSlots(per_endpoint=3)
    taken: list[bool] = []
    lock = threading.Lock()
    barrier = threading.Barrier(20)

    def take() -> None:
        barrier.wait()
        got = slots.try_take("eod@1")
        with lock:
            taken.append(got)

    threads = [threading.Thread(target=take) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert taken.count(True) == 3


def test_each_hold_waits_longer_up_to_the_cap():
    policy = HoldPolicy((10, 60, 600, 3600, 1, 5, 30), cap_s=600)
    assert [policy.delay(held) for held in range(9)] == [1, 5, 10, 30, 60, 600, 600, 600, 600]


def test_a_hold_waits_at_least_what_the_circuit_asks():
    policy = HoldPolicy((1, 5, 30, 60), cap_s=600)
    assert policy.delay(0, at_least_s=25) == 30
    assert policy.delay(3, at_least_s=2) == 60
    assert policy.delay(0, at_least_s=9999) == 60  # the longest tier there is


def test_the_hold_count_travels_in_a_header():
    assert times_held(None) == 0
    assert times_held({HELD_HEADER: 3}) == 3
    assert times_held({HELD_HEADER: "junk"}) == 0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_an_endpoint_past_its_burst_moves_to_the_bulk_lane_and_back_after_it_refills():
    clock = Clock()
    meter = BurstMeter(burst=5, window_s=10.0, clock=clock)
    lanes = [meter.lane_of("eod@1") for _ in range(8)]
    assert lanes == [Lane.NORMAL] * 5 + [Lane.BULK] * 3
    assert meter.lane_of("eod@2") is Lane.NORMAL  # another office is not affected
    clock.now = 2.0  # one token back per 2 s
    assert meter.lane_of("eod@1") is Lane.NORMAL
    assert meter.lane_of("eod@1") is Lane.BULK
    clock.now = 100.0
    assert [meter.lane_of("eod@1") for _ in range(5)] == [Lane.NORMAL] * 5


def test_lanes_can_be_turned_off():
    meter = BurstMeter(burst=0, window_s=10.0)
    assert {meter.lane_of("eod@1") for _ in range(1000)} == {Lane.NORMAL}


def test_a_delivery_waits_a_moment_for_a_slot_a_fast_endpoint_frees():
    slots = EndpointSlots(per_endpoint=1)
    assert slots.try_take("eod@1")
    releaser = threading.Timer(0.05, slots.give_back, args=("eod@1",))
    releaser.start()
    assert slots.try_take("eod@1", wait_s=5.0)
    releaser.join()


def test_no_more_deliveries_wait_for_an_endpoint_than_half_its_slots_or_one():
    slots = EndpointSlots(per_endpoint=1)
    assert slots.try_take("slow@1")
    waiting = threading.Thread(target=slots.try_take, args=("slow@1", 1.0))
    waiting.start()
    while not slots._waiting:  # the first waiter is in place
        pass
    assert not slots.try_take("slow@1", wait_s=1.0)  # refused at once: one waits already
    slots.give_back("slow@1")
    waiting.join()
    assert slots.in_use("slow@1") == 1
