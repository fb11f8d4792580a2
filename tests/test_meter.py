"""Meter details that need no proxy: listener failures stay contained."""

from __future__ import annotations

import logging

from metering.runtime import Denied, ProcessState


class Broken:
    def denied(self, event):
        raise TypeError("denied() takes 3 positional arguments but 4 were given")


class Recorder:
    def __init__(self):
        self.calls = []

    def denied(self, event):
        self.calls.append(event)


def test_a_failing_listener_is_logged_and_the_others_still_hear(caplog):
    recorder = Recorder()
    state = ProcessState()
    state.listeners += [Broken(), recorder]
    event = Denied("rt", "record", "denial")
    with caplog.at_level(logging.ERROR, logger="spendgate"):
        state.tell(event)  # must not raise into the request hook
    assert recorder.calls == [event]
    assert "denied listener Broken failed" in caplog.text
