"""`LogRedaction`: the addon that puts core/redact.py's filter on every root log handler."""

from __future__ import annotations

import logging

from core.redact import FILTER

__all__ = ["LogRedaction"]


class LogRedaction:
    """Puts `FILTER` on every root log handler. It stays there until the process exits:
    what addons log while shutting down is redacted too."""

    @staticmethod
    def attach() -> None:
        for handler in logging.getLogger().handlers:
            if FILTER not in handler.filters:
                handler.addFilter(FILTER)

    def load(self, loader) -> None:
        self.attach()

    def running(self) -> None:
        self.attach()  # handlers mitmproxy added after the script loaded
