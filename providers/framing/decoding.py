"""Content decoding of a stream chunk by chunk: gzip, deflate, br and zstd.

mitmproxy hands a streamed body to `flow.response.stream` still content-encoded; these
decoders work on a copy as it passes, so what the client gets is never touched.
"""

from __future__ import annotations

import zlib

__all__ = ["decoders_for"]




class _Gzip:
    def __init__(self) -> None:
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def __call__(self, data: bytes) -> bytes:
        out = self._d.decompress(data)
        while self._d.eof and self._d.unused_data:  # a further gzip member
            rest = self._d.unused_data
            self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out += self._d.decompress(rest)
        return out

    def flush(self) -> bytes:
        return self._d.flush()


class _Deflate:
    """HTTP 'deflate' is meant to be zlib-wrapped but some servers send raw deflate:
    the two-byte zlib header decides, with raw deflate as the fallback."""

    def __init__(self) -> None:
        self._d: zlib._Decompress | None = None
        self._head = b""

    def __call__(self, data: bytes) -> bytes:
        if self._d is not None:
            return self._d.decompress(data)
        head = self._head = self._head + data  # decided once two bytes are in
        if len(head) < 2:
            return b""
        cmf, flg = head[0], head[1]
        if cmf & 0x0F == 8 and ((cmf << 8) | flg) % 31 == 0:
            self._d = zlib.decompressobj()
            try:
                return self._d.decompress(head)
            except zlib.error:
                pass
        self._d = zlib.decompressobj(-zlib.MAX_WBITS)
        return self._d.decompress(head)

    def flush(self) -> bytes:
        return self._d.flush() if self._d is not None else b""


class _Brotli:
    def __init__(self) -> None:
        import brotli

        self._d = brotli.Decompressor()

    def __call__(self, data: bytes) -> bytes:
        return self._d.process(data)

    def flush(self) -> bytes:
        return b""


class _Zstd:
    def __init__(self) -> None:
        import zstandard

        self._d = zstandard.ZstdDecompressor().decompressobj(read_across_frames=True)

    def __call__(self, data: bytes) -> bytes:
        return self._d.decompress(data)

    def flush(self) -> bytes:
        return b""


_DECODERS = {"gzip": _Gzip, "x-gzip": _Gzip, "deflate": _Deflate, "br": _Brotli, "zstd": _Zstd}


def decoders_for(content_encoding: str | None) -> list:
    """Decoders in the order to apply them (the header lists encodings as applied)."""
    names = [n.strip().lower() for n in (content_encoding or "").split(",")]
    names = [n for n in names if n and n != "identity"]
    out = []
    for name in reversed(names):
        factory = _DECODERS.get(name)
        if factory is None:
            raise ValueError(f"unsupported content-encoding {name!r}")
        out.append(factory())
    return out
