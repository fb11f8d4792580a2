"""OpenAI's Images API: `/images/generations` (JSON), `/images/edits` and `/images/variations`
(multipart uploads), whole or streamed (`stream: true`, partial images).

Two ways of billing, told apart by the model:

- GPT image models (gpt-image-1, -1.5, -2...) report token usage: text and image input
  tokens priced apart (`input_tokens_details.image_tokens` → `units["input_image_tokens"]`),
  output tokens, image output tokens (`units["output_image_tokens"]`, the dearer class where
  a model prices them apart: gpt-image-1.5).
- dall-e-2 and dall-e-3 report nothing: they are billed per image by size and quality, which
  only the request says. Their units are `images_<size>_<quality>` (`images_1024x1792_hd`),
  priced by pricing/supplement.py (genai-prices has no dall-e).

The reservation is the most the request can cost: `n` images at the dearest size and quality
it allows, each with its partial images, as image output tokens; input bounded by the
prompt's bytes and a fixed allowance per uploaded image.
"""

from __future__ import annotations

import json
import re
from typing import Any

from core.usage import TokenUsage
from core.vocab import EndpointKind
from providers.base import Api, CallRequest, Endpoint
from providers.parsing import JSON_ERRORS, UsageParser, count_at, get_path
from providers.reading import choices, load_object, read_form, text_field
from providers.values import count

__all__ = [
    "IMAGES_EDIT",
    "IMAGES_GENERATE",
    "IMAGES_VARIATION",
    "ImagesApi",
    "OpenAIImagesParser",
    "dalle_unit",
    "image_output_tokens",
]

# --- what one image costs in output tokens ----------------------------------------------

#: Output tokens of one gpt-image-1 image, by quality and size: OpenAI's image generation
#: guide ("Cost and latency", developers.openai.com/api/docs/guides/image-generation).
GPT_IMAGE_1_TOKENS: dict[str, dict[str, int]] = {
    "low": {"1024x1024": 272, "1024x1536": 408, "1536x1024": 400},
    "medium": {"1024x1024": 1056, "1024x1536": 1584, "1536x1024": 1568},
    "high": {"1024x1024": 4160, "1024x1536": 6240, "1536x1024": 6208},
}
#: The sizes every GPT image model takes: what `size: auto` may pick.
STANDARD_SIZES = ("1024x1024", "1024x1536", "1536x1024")
#: gpt-image-2's output tokens for any size, as OpenAI's pricing calculator computes them
#: (per-quality factor; tokens = ceil(q x short-axis factor x (2,000,000 + pixels) / 4,000,000)).
QUALITY_FACTORS = {"low": 16, "medium": 48, "high": 96}
#: A quality the tables don't know (`xhigh`, `max`): twice `high`'s factor, a guess kept high.
UNKNOWN_QUALITY_FACTOR = 192
#: Each partial image of a stream adds up to this many output tokens (OpenAI's streaming
#: guide; the exact figure is unconfirmed, so it is only ever part of a bound).
PARTIAL_IMAGE_TOKENS = 100
#: Input tokens allowed for one uploaded image (or mask) in a reservation: above what
#: OpenAI's high input fidelity bills for the largest input image.
INPUT_IMAGE_TOKENS_MAX = 10_000
#: A prompt is at most 32,000 characters (OpenAI's API reference), 4 bytes each at most.
MAX_PROMPT_BYTES = 4 * 32_000

_SIZE = re.compile(r"\A(\d{2,5})x(\d{2,5})\Z")


def _formula_tokens(size: str, factor: int) -> int:
    m = _SIZE.match(size)
    if m is None:
        return 0
    width, height = int(m.group(1)), int(m.group(2))
    long, short = max(width, height), min(width, height)
    short_factor = (2 * factor * short + long) // (2 * long)
    return -(-factor * short_factor * (2_000_000 + width * height) // 4_000_000)


def image_output_tokens(size: str | None, quality: str | None) -> int:
    """The most output tokens one image of `size` and `quality` can take: the larger of
    gpt-image-1's table and gpt-image-2's formula. `auto` (or nothing) is the dearest:
    `high`, and the dearest standard size."""
    quality = (quality or "auto").lower()
    if quality == "auto":
        quality = "high"
    if not size or size == "auto" or _SIZE.match(size) is None:
        return max(image_output_tokens(s, quality) for s in STANDARD_SIZES)
    factor = QUALITY_FACTORS.get(quality, UNKNOWN_QUALITY_FACTOR)
    table = GPT_IMAGE_1_TOKENS.get(quality, GPT_IMAGE_1_TOKENS["high"])
    return max(table.get(size, 0), _formula_tokens(size, factor))


def is_dalle(model: str | None) -> bool:
    return bool(model) and model.lower().startswith("dall-e")  # type: ignore[union-attr]


def dalle_unit(model: str, size: str | None, quality: str | None) -> str:
    """The unit one dall-e image is billed in: `images_<size>_<quality>` (dall-e-2 has only
    `standard`; dall-e-3's default is `standard`, `hd` costs more)."""
    hd = model.lower().startswith("dall-e-3") and (quality or "").lower() == "hd"
    return f"images_{size or '1024x1024'}_{'hd' if hd else 'standard'}"


# --- reading the request --------------------------------------------------------------


def _image_request(
    model: str | None, *, n: int, size: str | None, quality: str | None, stream: bool, partials: int,
    prompt_bytes: int, input_images: int, input_bytes: int, parse_error: str | None = None,
) -> CallRequest:
    """The call a generation or edit request makes, with what it can cost at most."""
    if is_dalle(model):
        units = {dalle_unit(model, size, quality): n}  # type: ignore[arg-type]
        return CallRequest(model=model, stream=False, max_output_tokens=0, input_bytes=input_bytes,
                           parse_error=parse_error, units=units, max_usage=TokenUsage(units=units))
    out = n * (image_output_tokens(size, quality) + partials * PARTIAL_IMAGE_TOKENS)
    image_in = input_images * INPUT_IMAGE_TOKENS_MAX
    most = TokenUsage(
        input_tokens=prompt_bytes + image_in,
        output_tokens=out,
        units={"input_image_tokens": image_in, "output_image_tokens": out} if image_in else
        {"output_image_tokens": out},
    )
    return CallRequest(model=model, stream=stream, max_output_tokens=out, input_bytes=input_bytes,
                       parse_error=parse_error, max_usage=most, expected_usage=most)


def _int(value: Any) -> int | None:
    if isinstance(value, str):
        value = value.strip()
        return int(value) if value.isdigit() else None
    return count(value)


class ImagesApi(Api):
    """One Images API operation; `upload` for the multipart ones (edits, variations)."""

    kind = EndpointKind.IMAGES

    def __init__(self, *, upload: bool, meters: str) -> None:
        self.upload = upload
        self.meters = meters  # type: ignore[misc]

    def read_request(self, endpoint: Endpoint, body: bytes, content_type: str = "") -> CallRequest:
        if self.upload:
            form, error = read_form(body, content_type)
            fields = form.fields if form is not None else {}
            images = form.count("image", "image[]", "mask") if form is not None else 0
            prompt_bytes = len(fields.get("prompt", "").encode())
            if form is None:  # unreadable: one image, and a prompt of at most 32,000 characters
                images, prompt_bytes = 1, min(len(body), MAX_PROMPT_BYTES)
        else:
            obj, error = load_object(body)
            fields = obj or {}
            images = 0
            prompt_bytes = len(body)  # the whole body bounds the prompt's tokens
        model = text_field(fields.get("model")) or endpoint.url_model
        return _image_request(
            model,
            n=choices(_int(fields.get("n"))),
            size=text_field(fields.get("size")),
            quality=text_field(fields.get("quality")),
            stream=fields.get("stream") in (True, "true", "True"),
            partials=min(_int(fields.get("partial_images")) or 0, 3),
            prompt_bytes=prompt_bytes,
            input_images=images,
            input_bytes=len(body),
            parse_error=error,
        )

    def new_parser(self, endpoint: Endpoint) -> UsageParser:
        return OpenAIImagesParser()


IMAGES_GENERATE = ImagesApi(upload=False, meters="GPT image models: text and image input, output and image "
                            "output tokens; dall-e: images by size and quality (from the request)")
IMAGES_EDIT = ImagesApi(upload=True, meters="as generations; uploaded images are image input tokens")
IMAGES_VARIATION = ImagesApi(upload=True, meters="dall-e-2 images by size (from the request)")


# --- reading the response -------------------------------------------------------------


def images_usage(u: Any) -> TokenUsage | None:
    """`usage` of a GPT image response or `*.completed` event; None if it has none."""
    if not isinstance(u, dict):
        return None
    inp, out = count(u.get("input_tokens")), count(u.get("output_tokens"))
    if inp is None and out is None:
        return None
    units: dict[str, int] = {}
    if image_in := count_at(u, "input_tokens_details", "image_tokens"):
        units["input_image_tokens"] = image_in
    image_out = count(get_path(u, "output_tokens_details", "image_tokens"))
    if image_out is None and get_path(u, "output_tokens_details", "text_tokens") is None:
        image_out = out  # no breakdown: every output token is an image token
    if image_out:
        units["output_image_tokens"] = image_out
    return TokenUsage(
        input_tokens=inp or 0,
        cache_read_tokens=count_at(u, "input_tokens_details", "cached_tokens"),
        output_tokens=out or 0,
        units=units,
    )


def _plus(a: TokenUsage | None, b: TokenUsage) -> TokenUsage:
    if a is None:
        return b
    units = dict(a.units)
    for name, value in b.units.items():
        units[name] = units.get(name, 0) + value
    return TokenUsage(
        input_tokens=a.input_tokens + b.input_tokens,
        cache_read_tokens=a.cache_read_tokens + b.cache_read_tokens,
        output_tokens=a.output_tokens + b.output_tokens,
        units=units,
    )


#: Bodies and events larger than this carry base64 images: their few small fields are
#: read without decoding the images (a 4 MB image body takes ~17 ms to json.loads).
LARGE_BYTES = 64 * 1024
_USAGE_KEY = b'"usage"'
_TYPE_VALUE = re.compile(rb'"type"\s*:\s*"([^"\\]{1,80})"')


def _small_fields(data: bytes) -> dict[str, Any] | None:
    """`type` and top-level `usage` of a large image body or event, and whether it has
    `data`, found without parsing the base64 around them (base64 never holds a quote,
    and a quote inside a JSON string is escaped, so `"usage":` can only be a key)."""
    out: dict[str, Any] = {}
    if m := _TYPE_VALUE.search(data, 0, 512):
        out["type"] = m.group(1).decode("ascii", "replace")
    if b'"data"' in data:
        out["data"] = []
    end = len(data)
    decoder = json.JSONDecoder()
    while (at := data.rfind(_USAGE_KEY, 0, end)) >= 0:
        end = at
        rest = data[at + len(_USAGE_KEY):].lstrip()
        if rest[:1] != b":":
            continue
        try:
            text = rest[1:].decode("utf-8")
            value, _ = decoder.raw_decode(text, len(text) - len(text.lstrip()))
        except JSON_ERRORS:
            return None
        out["usage"] = value
        break
    return out


class OpenAIImagesParser(UsageParser):
    """Images API responses. GPT image models: `usage` in the body, or in each final
    image's `image_generation.completed` / `image_edit.completed` event (summed: one per
    image). dall-e: no usage, a `data` list; the request's units bill it. Partial images
    (base64, large) are counted, never parsed."""

    def __init__(self) -> None:
        super().__init__()
        self.partial_images = 0

    def feed_body(self, body: bytes | str) -> None:
        if isinstance(body, bytes) and len(body) > LARGE_BYTES:
            obj = _small_fields(body)
            if obj is None:
                self.note_error("invalid JSON in response body")
                return
            self._guarded(self._on_body, obj, "response body")
            return
        super().feed_body(body)

    def feed_event(self, data: bytes | str, event: str | None = None) -> None:
        head = data[:200].encode("utf-8", "replace") if isinstance(data, str) else data[:200]
        if (event or "").endswith("partial_image") or b'partial_image"' in head:
            self.events += 1
            self.partial_images += 1
            return
        if isinstance(data, bytes) and len(data) > LARGE_BYTES:
            self.events += 1
            obj = _small_fields(data)
            if obj is None:
                self.note_error("invalid JSON in stream event")
                return
            self._guarded(self._on_event, obj, "stream event", event)
            return
        super().feed_event(data, event)

    def _on_body(self, obj: Any) -> None:
        usage = images_usage(obj.get("usage"))
        if usage is not None:
            self._usage = usage
            self.complete = True
        elif isinstance(obj.get("data"), list):
            self.complete = True  # dall-e: billed by the request's units
        else:
            self.note_error("no usage in response body")

    def _on_event(self, obj: dict[str, Any], event: str | None) -> None:
        etype = obj.get("type") if isinstance(obj.get("type"), str) else event or ""
        if etype.endswith(".completed"):
            usage = images_usage(obj.get("usage"))
            if usage is not None:
                self._usage = _plus(self._usage, usage)
                self.complete = True
            self.ended = True
        elif etype == "error":
            message = get_path(obj, "error", "message")
            self.note_error(f"error event: {message if isinstance(message, str) else 'no message'}")
