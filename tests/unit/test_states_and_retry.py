import itertools

import pytest

from hub.retry import RetryPolicy, shortest_tier_at_least
from hub.states import IllegalTransition, MessageStatus, allowed_next, check_transition

HAPPY_PATH = ["received", "accepted", "routed", "delivering", "delivered", "confirmed"]


def test_the_happy_path_is_allowed_step_by_step():
    for current, new in itertools.pairwise(HAPPY_PATH):
        check_transition(MessageStatus(current), MessageStatus(new))


@pytest.mark.parametrize(
    ("current", "new"),
    [
        ("delivered", "retrying"),
        ("rejected", "accepted"),
        ("confirmed", "dead"),
        ("received", "delivered"),
    ],
)
def test_illegal_moves_are_refused(current, new):
    with pytest.raises(IllegalTransition):
        check_transition(MessageStatus(current), MessageStatus(new))


def test_retrying_can_go_back_to_delivering_and_end_dead():
    assert MessageStatus.DELIVERING in allowed_next(MessageStatus.RETRYING)
    assert MessageStatus.DEAD in allowed_next(MessageStatus.RETRYING)


def test_rejected_and_confirmed_are_final():
    assert allowed_next(MessageStatus.REJECTED) == frozenset()
    assert allowed_next(MessageStatus.CONFIRMED) == frozenset()


def test_each_failure_waits_in_the_next_tier_and_the_last_tier_repeats():
    policy = RetryPolicy(delays_s=(10, 60, 600), max_attempts=8)
    assert [policy.delay_after(n) for n in range(1, 6)] == [10, 60, 600, 600, 600]


def test_retry_after_moves_the_wait_up_to_a_long_enough_tier():
    policy = RetryPolicy(delays_s=(10, 60, 600), max_attempts=8)
    assert policy.delay_after(1, retry_after_s=30) == 60
    assert policy.delay_after(1, retry_after_s=5) == 10
    assert policy.delay_after(1, retry_after_s=5000) == 600


def test_the_policy_gives_up_after_the_last_allowed_attempt():
    policy = RetryPolicy(delays_s=(1,), max_attempts=3)
    assert [policy.gives_up_after(n) for n in (1, 2, 3)] == [False, False, True]


def test_shortest_tier_at_least():
    assert shortest_tier_at_least((10, 60), 0) == 10
    assert shortest_tier_at_least((10, 60), 10.5) == 60


def test_the_policy_gives_up_once_the_next_attempt_would_come_after_the_maximum_age():
    # Tiers 10 s, 1 min, 10 min, 1 h, then hourly: the 72-hour window ends the retries.
    policy = RetryPolicy(delays_s=(10, 60, 600, 3600), max_attempts=1000, max_age_s=72 * 3600)
    assert not policy.gives_up_after(5, age_s=70 * 3600)
    assert policy.gives_up_after(5, age_s=71.5 * 3600)
    assert not policy.gives_up_after(1, age_s=0)
