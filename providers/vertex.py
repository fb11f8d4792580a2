"""Google Vertex AI: Gemini (`publishers/google`) and Claude (`publishers/anthropic`) on
Google Cloud, at `{region}-aiplatform.googleapis.com` and the global
`aiplatform.googleapis.com` (also the multi-region `aiplatform.{us,eu}.rep.googleapis.com`).

Gemini speaks the Gemini API's wire format under
`/{v1|v1beta1}/projects/{p}/locations/{l}/publishers/google/models/{model}` (and, in express
mode, `/{version}/publishers/google/models/{model}` with an API key); Claude speaks
Anthropic's Messages under `…/publishers/anthropic/models/{model}:rawPredict` and
`:streamRawPredict`, the model (`claude-sonnet-4-5@20250929`) in the URL and not in the
body. Both are priced under genai-prices' `google` provider, which holds Vertex's own Claude
prices and falls back to Anthropic's for the others.

Credentials: an OAuth access token (`Authorization: Bearer ya29…`, what google-auth and
AnthropicVertex send) or, in express mode, an API key in `x-goog-api-key`. Access tokens
expire within the hour, so a key scope per token lasts no longer: per-person budgets on
Vertex come from proxy authentication or virtual keys. A virtual key is swapped for
`providers.vertex.api_key` (a Google Cloud API key) on the Gemini routes; Claude's
rawPredict accepts no API key, so a virtual key there is refused.
"""

from __future__ import annotations

from dataclasses import replace

from providers.anthropic import MESSAGES
from providers.base import FREE, Credential, KeyPlace, Provider, Route
from providers.gemini import embed_routes, generate_routes, with_versions
from providers.gemini_live import LIVE

__all__ = ["VERTEX", "VERTEX_CLAUDE_CREDENTIAL", "VERTEX_CREDENTIAL"]

_VERSIONS = ("v1", "v1beta1")

#: An OAuth access token (google-auth, AnthropicVertex) or an express-mode API key; a
#: virtual key's replacement, a Google Cloud API key, goes to `x-goog-api-key`.
VERTEX_CREDENTIAL = Credential(
    (KeyPlace.BEARER, KeyPlace.GOOG_API_KEY, KeyPlace.QUERY_KEY),  # type: ignore[attr-defined]
    KeyPlace.GOOG_API_KEY,  # type: ignore[attr-defined]
)
VERTEX_CLAUDE_CREDENTIAL = replace(
    VERTEX_CREDENTIAL,
    no_virtual_keys=(
        "Claude on Vertex AI accepts only OAuth access tokens, which expire within the hour, so "
        "spendgate cannot swap a virtual key for a configured credential there. Send your own access "
        "token (gcloud auth print-access-token) and name yourself with proxy authentication "
        "(HTTPS_PROXY=http://USER_ID:USER_KEY@proxy:8080)."
    ),
)

_IN_PROJECT = "/{version}/projects/{project}/locations/{location}/publishers"
_EXPRESS = "/{version}/publishers"  # express mode: an API key, no project in the path


def _gemini_routes(publishers: str) -> tuple[Route, ...]:
    models = f"{publishers}/google/models/{{model}}"
    return generate_routes(models) + embed_routes(models, batch=False)


def _claude_routes(publishers: str) -> tuple[Route, ...]:
    models = f"{publishers}/anthropic/models"
    only_tokens = "an OAuth token only: a virtual key is refused"
    return (
        # before `{model}:rawPredict`, which would take `count-tokens` for a model
        Route(f"{models}/count-tokens:rawPredict", FREE, note="token count"),
        Route(f"{models}/{{model}}:rawPredict", MESSAGES, credential=VERTEX_CLAUDE_CREDENTIAL,
              note=f"Claude; {only_tokens}"),
        # streams as SSE when the body says `"stream": true` (as at Anthropic): not `stream=True`,
        # whose unlabelled framing would be Gemini's JSON array
        Route(f"{models}/{{model}}:streamRawPredict", MESSAGES, credential=VERTEX_CLAUDE_CREDENTIAL,
              note=f"Claude, streamed (SSE); {only_tokens}"),
    )


VERTEX = Provider(
    "vertex",
    title="Google Vertex AI",
    price_provider="google",
    hosts=("aiplatform.googleapis.com", "aiplatform.us.rep.googleapis.com", "aiplatform.eu.rep.googleapis.com"),
    # `-aiplatform.googleapis.com`, not `.googleapis.com`: no other Google API ends so.
    host_suffixes=("-aiplatform.googleapis.com",),
    credential=VERTEX_CREDENTIAL,
    config_names=("vertex", "vertex_ai"),
    notes=(
        "Identity: an OAuth access token (`Bearer ya29…`) is a key like any other, tracked by its "
        "fingerprint, but it expires within the hour, so its key scope holds one hour of one person's "
        "calls. Give Vertex AI users budgets through proxy authentication "
        "(`HTTPS_PROXY=http://USER_ID:USER_KEY@proxy:8080`: the user's and team's budgets apply) or "
        "virtual keys, not through key budgets on tokens.",
        "Virtual keys: swapped for `providers.vertex.api_key`, a Google Cloud API key (an express-mode "
        "key, or one bound to a service account), on the Gemini routes; refused with 400 "
        "`virtual_key_not_supported` on Claude's, which accept OAuth access tokens only.",
        "Not metered (recorded as `unmetered`): `:predict` (classic embedding models such as "
        "`text-embedding-005`, Imagen) and tuned models' `endpoints/{id}` calls. Provisioned-throughput "
        "traffic is priced per token like on-demand traffic.",
    ),
    routes=with_versions(_gemini_routes(_IN_PROJECT) + _claude_routes(_IN_PROJECT) + _gemini_routes(_EXPRESS)
                         + (Route("/ws/google.cloud.aiplatform.{version}.LlmBidiService/BidiGenerateContent", LIVE,
                                  method="GET", note="Gemini Live; the model in the `setup` message"),),
                         _VERSIONS),
)
