"""Full garbage collections held off while every handshake place is taken
(server/gc_pacing.py, fed by server/admission.py), and let run again after a quiet moment or
a bounded time. Time is a FakeClock; the collector's thresholds are the process's own, so
each test puts them back."""
from __future__ import annotations

import gc
import logging

import pytest

from server.admission import Admission
from server.gc_pacing import HELD_THRESHOLD, FullCollectionPacer
from services.clock import FakeClock


@pytest.fixture(autouse=True)
def thresholds():
    saved = gc.get_threshold()
    yield saved
    gc.set_threshold(*saved)


async def test_held_while_places_are_taken_then_back_after_a_quiet_moment(thresholds):
    clock = FakeClock()  # advanced less than admission.HOLD_S in all: no hold runs out
    pacer = FullCollectionPacer(clock, quiet_s=0.25, max_hold_s=60.0)
    admission = Admission(2, 10, clock)
    admission.on_saturated = pacer.hold
    first = await admission.enter()
    assert first is not None and gc.get_threshold() == thresholds
    second = await admission.enter()
    assert second is not None and pacer.held
    assert gc.get_threshold() == (*thresholds[:2], HELD_THRESHOLD)

    admission.release(first)  # a place is free: not yet, a storm comes in waves
    await clock.advance(0.1)
    assert pacer.held
    again = await admission.enter()  # taken again before the quiet moment was up
    assert again is not None
    await clock.advance(0.3)
    assert pacer.held and pacer.holds == 1

    admission.release(again)
    await clock.advance(0.2)
    assert pacer.held
    await clock.advance(0.05)
    assert not pacer.held and gc.get_threshold() == thresholds
    admission.release(second)
    assert gc.get_threshold() == thresholds


async def test_never_held_longer_than_max_hold(thresholds, caplog):
    clock = FakeClock()
    pacer = FullCollectionPacer(clock, quiet_s=1.0, max_hold_s=60.0)
    pacer.hold(True)
    await clock.advance(59.0)
    assert gc.get_threshold()[2] == HELD_THRESHOLD
    with caplog.at_level(logging.WARNING, logger="server.gc"):
        await clock.advance(1.0)
    assert not pacer.held and gc.get_threshold() == thresholds
    assert "full garbage collections run again" in caplog.text
    pacer.hold(False)  # the end of that storm changes nothing more
    assert gc.get_threshold() == thresholds
    pacer.hold(True)  # the next one is held again
    assert pacer.holds == 2 and gc.get_threshold()[2] == HELD_THRESHOLD
    pacer.close()
    assert gc.get_threshold() == thresholds
