"""Failed logins: a user name is refused after N failures in the window, a client address after 4 N."""

from __future__ import annotations

from lightbox.services.login_throttle import LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_name_is_locked_for_what_is_left_of_the_window() -> None:
    clock = Clock()
    throttle = LoginThrottle(3, 60, clock)
    for _ in range(2):
        throttle.failed("Bob", "10.0.0.1")
        clock.now += 10
    assert throttle.retry_after("bob", "10.0.0.1") is None
    throttle.failed("bob", "10.0.0.1")
    assert throttle.retry_after("BOB", "10.0.0.9") == 40  # any address, any case; the first failure ages out
    clock.now += 40
    assert throttle.retry_after("bob", "10.0.0.1") is None


def test_success_clears_the_name_not_the_address() -> None:
    clock = Clock()
    throttle = LoginThrottle(2, 60, clock)
    throttle.failed("bob", "10.0.0.1")
    throttle.succeeded("bob")
    throttle.failed("bob", "10.0.0.1")
    assert throttle.retry_after("bob", "10.0.0.1") is None
    for n in range(8):  # one address trying many names: 4 x 2 failures
        throttle.failed(f"user{n}", "10.0.0.2")
    assert throttle.retry_after("someone-else", "10.0.0.2") is not None
    assert throttle.retry_after("someone-else", "10.0.0.3") is None
