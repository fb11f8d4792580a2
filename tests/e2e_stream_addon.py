"""A minimal mitmproxy addon for harness tests: stream responses that have no
Content-Length (SSE, Gemini's streamed JSON array) straight through to the client.

Bare mitmdump buffers a whole response before forwarding it, so a stream's first chunk
only reaches the client at the end. `--set stream_large_bodies=1` is no substitute: it
streams *request* bodies too, and mitmproxy then opens the upstream connection at
`requestheaders`, before map_remote has rewritten the host (DNS lookup of the real host,
502). This addon only touches responses, in `responseheaders`.

Use: MitmProxy(fake.url, script=STREAM_ADDON).
"""

from mitmproxy import http


def responseheaders(flow: http.HTTPFlow) -> None:
    if flow.response is None:
        return
    if "content-length" not in flow.response.headers:
        flow.response.stream = True
