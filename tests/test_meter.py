"""Meter details that need no proxy: listener failures stay contained."""

from __future__ import annotations

import logging
from types import SimpleNamespace

from addon.meter import Meter


class Broken:
    def denied(self, *args):
        raise TypeError("denied() takes 3 positional arguments but 4 were given")


class Recorder:
    def __init__(self):
        self.calls = []

    def denied(self, *args):
        self.calls.append(args)


def test_a_failing_listener_is_logged_and_the_others_still_hear(caplog):
    recorder = Recorder()
    meter = Meter(SimpleNamespace(listeners=[Broken(), recorder]))
    with caplog.at_level(logging.ERROR, logger="spendgate"):
        meter._notify("denied", "rt", "record", "denial")  # must not raise into the request hook
    assert recorder.calls == [("rt", "record", "denial")]
    assert "denied listener Broken failed" in caplog.text
