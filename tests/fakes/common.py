"""What every fake provider shares: the default reply text, the control headers, and
an incremental content encoder (gzip, deflate, br, zstd) that flushes after every piece."""

from __future__ import annotations

import json
import zlib
from typing import Any

try:  # optional encoders
    import brotli  # type: ignore
except ImportError:  # pragma: no cover
    brotli = None
try:
    import zstandard  # type: ignore
except ImportError:  # pragma: no cover
    zstandard = None

DEFAULT_TEXT = "Hello from the fake provider, deterministic reply."
DEFAULT_CHUNKS = 5

CONTROL_HEADERS = (
    "x-fake-usage",
    "x-fake-delay-ms",
    "x-fake-first-chunk-then-wait-ms",
    "x-fake-encoding",
    "x-fake-cut-after",
    "x-fake-cut-mode",
    "x-fake-status",
    "x-fake-chunks",
    "x-fake-hang-ms",
    "x-fake-corrupt-frame",
    "x-fake-body",
)


class CutConnection(Exception):
    """Raised to abandon a response mid-body and drop the connection."""


def split_text(text: str, n: int) -> list[str]:
    """Split text into n non-empty pieces (fewer if the text is short)."""
    n = max(1, min(n, len(text)))
    size, rem = divmod(len(text), n)
    out, pos = [], 0
    for i in range(n):
        step = size + (1 if i < rem else 0)
        out.append(text[pos : pos + step])
        pos += step
    return out


def j(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


class Encoder:
    """Incremental content encoder that can flush after every piece."""

    def __init__(self, name: str | None):
        self.name = (name or "").strip().lower() or None
        if self.name in (None, "identity"):
            self.name = None
            self._c = None
        elif self.name == "gzip":
            self._c = zlib.compressobj(6, zlib.DEFLATED, 31)
        elif self.name == "deflate":
            self._c = zlib.compressobj(6, zlib.DEFLATED, 15)
        elif self.name == "br":
            if brotli is None:
                raise ValueError("brotli not installed")
            self._c = brotli.Compressor()
        elif self.name == "zstd":
            if zstandard is None:
                raise ValueError("zstandard not installed")
            self._c = zstandard.ZstdCompressor().compressobj()
        else:
            raise ValueError(f"unknown encoding {name!r}")

    def chunk(self, data: bytes) -> bytes:
        """Compress data and flush so the peer can decode it right away."""
        if self._c is None:
            return data
        if self.name in ("gzip", "deflate"):
            return self._c.compress(data) + self._c.flush(zlib.Z_SYNC_FLUSH)
        if self.name == "br":
            return self._c.process(data) + self._c.flush()
        return self._c.compress(data) + self._c.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)

    def finish(self) -> bytes:
        if self._c is None:
            return b""
        if self.name in ("gzip", "deflate"):
            return self._c.flush(zlib.Z_FINISH)
        if self.name == "br":
            return self._c.finish()
        return self._c.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH)

    def whole(self, data: bytes) -> bytes:
        return self.chunk(data) + self.finish() if self._c is not None else data
