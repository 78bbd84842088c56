"""The per-process dispatcher: one broker message now, then at most one trailing message
per coalescing interval, covering every call that was told LATER; a failing broker
pauses it. Plain unit tests with a fake `send`: no database, no broker."""

import threading
import time

import pytest

from incidents.ingest.dispatch import Dispatcher, Outcome, Sent
from testing.waiting import wait_until


class FakeSend:
    """Records every send as (outbox_id, monotonic time, thread); raises `fail` if set.

    With `block` set, a send waits (in whichever thread runs it) until `release` is set.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[tuple[int, float, str, threading.Thread]] = []
        self.fail: BaseException | None = None
        self.block = False
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, outbox_id: int) -> None:
        with self.lock:
            self.calls.append(
                (
                    outbox_id,
                    time.monotonic(),
                    threading.current_thread().name,
                    threading.current_thread(),
                )
            )
        if self.block:
            self.entered.set()
            assert self.release.wait(10), "the test never released the blocked send"
        if self.fail is not None:
            raise self.fail

    @property
    def ids(self) -> list[int]:
        with self.lock:
            return [c[0] for c in self.calls]

    def count(self) -> int:
        with self.lock:
            return len(self.calls)


@pytest.fixture
def fake() -> FakeSend:
    return FakeSend()


@pytest.fixture
def dispatcher(fake):
    d = Dispatcher(fake)
    yield d
    fake.release.set()  # never leave the sender thread blocked
    d.reset()


def timed(d: Dispatcher, outbox_id: int, **kw) -> tuple[float, Outcome]:
    """(monotonic time just before the call, its outcome)."""
    started = time.monotonic()
    return started, d.dispatch(outbox_id, **kw)


def test_the_first_dispatch_sends_now_in_the_callers_thread(dispatcher, fake):
    outcome = dispatcher.dispatch(7, coalesce_ms=200, pause_seconds=5)
    assert outcome.sent == Sent.NOW and outcome.error == "" and outcome.ok
    # It has left before dispatch returned, from this thread.
    assert fake.ids == [7]
    assert fake.calls[0][3] is threading.current_thread()
    assert dispatcher.flush(1) is True  # nothing trailing
    assert fake.ids == [7]


def test_a_burst_becomes_one_send_now_and_one_trailing_send(dispatcher, fake):
    coalesce = 0.5
    kw = {"coalesce_ms": coalesce * 1000, "pause_seconds": 5}
    calls = [timed(dispatcher, 100 + i, **kw) for i in range(50)]
    outcomes = [o.sent for _, o in calls]
    assert outcomes[0] == Sent.NOW
    assert outcomes[1:] == [Sent.LATER] * 49
    assert all(o.ok and o.error == "" for _, o in calls)
    assert fake.count() == 1  # the trailing send waits for the interval to end

    assert dispatcher.flush(5) is True
    assert fake.count() == 2
    (first_id, _, _, first_thread), (trailing_id, trailing_at, name, thread) = fake.calls
    assert first_id == 100 and first_thread is threading.current_thread()
    assert trailing_id == 101  # the call that scheduled it
    assert thread is not threading.current_thread() and name == "ingest-dispatch"
    # Not before the interval is over, counted from before the first send.
    assert trailing_at >= calls[0][0] + coalesce
    # Every call told LATER was made before a send that left after it.
    later_started = [t for t, o in calls if o.sent == Sent.LATER]
    assert max(later_started) < trailing_at

    # Nothing else leaves: one trailing send covered all 49 (let another interval pass).
    time.sleep(coalesce + 0.2)
    assert fake.count() == 2


def test_after_the_interval_a_dispatch_sends_now_again(dispatcher, fake):
    kw = {"coalesce_ms": 50, "pause_seconds": 5}
    assert dispatcher.dispatch(1, **kw).sent == Sent.NOW
    time.sleep(0.08)  # the interval passing is what is under test
    assert dispatcher.dispatch(2, **kw).sent == Sent.NOW
    assert dispatcher.flush(1) is True
    assert fake.ids == [1, 2]
    assert all(c[3] is threading.current_thread() for c in fake.calls)


def test_zero_coalescing_sends_every_time(dispatcher, fake):
    outcomes = [dispatcher.dispatch(i, coalesce_ms=0, pause_seconds=5).sent for i in range(20)]
    assert outcomes == [Sent.NOW] * 20
    assert fake.ids == list(range(20))
    assert all(c[3] is threading.current_thread() for c in fake.calls)
    assert dispatcher.flush(1) is True
    assert fake.count() == 20


def test_a_call_while_the_trailing_send_is_leaving_gets_a_send_of_its_own(dispatcher, fake):
    """The trailing message may leave before the row of a call made meanwhile commits:
    such a call must be covered by a later send, not by the one already in flight."""
    kw = {"coalesce_ms": 500, "pause_seconds": 5}
    assert dispatcher.dispatch(1, **kw).sent == Sent.NOW
    fake.block = True
    assert dispatcher.dispatch(2, **kw).sent == Sent.LATER
    assert fake.entered.wait(5), "the trailing send never started"
    fake.block = False  # only the send in flight stays blocked
    started, outcome = timed(dispatcher, 3, **kw)
    assert outcome.sent == Sent.LATER
    assert fake.ids == [1, 2]
    assert dispatcher.flush(0.1) is False  # a send is leaving: flush says it timed out

    fake.release.set()
    assert dispatcher.flush(5) is True
    assert fake.ids == [1, 2, 3]
    assert fake.calls[2][1] > started
    # Coalesced: an interval after the send in flight (recorded a moment after it began).
    assert fake.calls[2][1] >= fake.calls[1][1] + 0.5 - 0.01
    assert fake.calls[2][3] is fake.calls[1][3]  # the same long-lived sender thread


def test_trailing_sends_reuse_one_thread(dispatcher, fake):
    kw = {"coalesce_ms": 30, "pause_seconds": 5}
    for round_ in range(3):
        assert dispatcher.dispatch(10 * round_, **kw).sent == Sent.NOW
        assert dispatcher.dispatch(10 * round_ + 1, **kw).sent == Sent.LATER
        assert dispatcher.flush(5) is True
        time.sleep(0.05)  # let the interval after the trailing send pass
    assert fake.ids == [0, 1, 10, 11, 20, 21]
    trailing_threads = {id(c[3]) for c in fake.calls[1::2]}
    assert len(trailing_threads) == 1


def test_a_failed_send_reports_the_error_and_pauses(dispatcher, fake):
    kw = {"coalesce_ms": 10, "pause_seconds": 0.5}
    fake.fail = ConnectionError("broker down")
    failed_before = time.monotonic()
    outcome = dispatcher.dispatch(1, **kw)
    assert outcome.sent == Sent.FAILED and not outcome.ok
    assert outcome.error == "ConnectionError: broker down"
    assert fake.ids == [1]

    # Paused: no send is even attempted, and no trailing send is scheduled.
    fake.fail = None
    paused = dispatcher.dispatch(2, **kw)
    assert paused.sent == Sent.PAUSED and not paused.ok and paused.error == ""
    assert dispatcher.flush(1) is True
    assert fake.ids == [1]

    seen: list[tuple[float, Outcome]] = []

    def resumed() -> bool:
        seen.append(timed(dispatcher, 3, **kw))
        return seen[-1][1].sent != Sent.PAUSED

    wait_until(resumed, timeout=5, what="the pause to end")
    assert seen[-1][1].sent == Sent.NOW
    assert seen[-1][0] >= failed_before + 0.5 - 0.01  # not before the pause was over
    assert all(o.sent == Sent.PAUSED for _, o in seen[:-1])
    assert fake.ids == [1, 3]  # the paused calls sent nothing


def test_a_failed_trailing_send_pauses_the_dispatcher(dispatcher, fake):
    kw = {"coalesce_ms": 30, "pause_seconds": 1.0}
    assert dispatcher.dispatch(1, **kw).sent == Sent.NOW
    fake.fail = RuntimeError("no route")
    assert dispatcher.dispatch(2, **kw).sent == Sent.LATER
    assert dispatcher.flush(5) is True
    assert fake.ids == [1, 2]
    assert fake.calls[1][2] == "ingest-dispatch"
    fake.fail = None
    outcome = dispatcher.dispatch(3, **kw)
    assert outcome.sent == Sent.PAUSED
    assert fake.ids == [1, 2]
    wait_until(
        lambda: dispatcher.dispatch(4, **kw).sent == Sent.NOW,
        timeout=5,
        what="the pause after the trailing failure to end",
    )
    assert fake.ids == [1, 2, 4]


def test_flush_returns_once_the_trailing_send_has_left(dispatcher, fake):
    kw = {"coalesce_ms": 150, "pause_seconds": 5}
    assert dispatcher.flush(0.5) is True  # nothing pending
    started, _ = timed(dispatcher, 1, **kw)
    assert dispatcher.dispatch(2, **kw).sent == Sent.LATER
    assert fake.ids == [1]
    assert dispatcher.flush(5) is True
    assert fake.ids == [1, 2]  # flush returned after the send, not before
    assert fake.calls[1][1] >= started + 0.15


def test_flush_times_out_while_a_send_is_pending(dispatcher, fake):
    kw = {"coalesce_ms": 2000, "pause_seconds": 5}
    assert dispatcher.dispatch(1, **kw).sent == Sent.NOW
    assert dispatcher.dispatch(2, **kw).sent == Sent.LATER
    before = time.monotonic()
    assert dispatcher.flush(0.1) is False
    assert 0.05 <= time.monotonic() - before < 1.5
    assert fake.ids == [1]


def test_reset_forgets_the_pause(dispatcher, fake):
    kw = {"coalesce_ms": 100, "pause_seconds": 60}
    fake.fail = OSError("refused")
    assert dispatcher.dispatch(1, **kw).sent == Sent.FAILED
    assert dispatcher.dispatch(2, **kw).sent == Sent.PAUSED
    fake.fail = None
    dispatcher.reset()
    assert dispatcher.dispatch(3, **kw).sent == Sent.NOW  # neither paused nor coalesced
    assert fake.ids == [1, 3]


def test_reset_forgets_a_pending_trailing_send(dispatcher, fake):
    coalesce = 0.2
    kw = {"coalesce_ms": coalesce * 1000, "pause_seconds": 5}
    assert dispatcher.dispatch(1, **kw).sent == Sent.NOW
    assert dispatcher.dispatch(2, **kw).sent == Sent.LATER
    dispatcher.reset()
    assert dispatcher.flush(0.5) is True  # nothing pending any more
    assert dispatcher.dispatch(3, **kw).sent == Sent.NOW
    time.sleep(coalesce + 0.2)  # the old interval passing sends nothing
    assert fake.ids == [1, 3]
