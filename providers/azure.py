"""Azure OpenAI: OpenAI's wire format on every `*.openai.azure.com` resource.

Two URL families: deployments (`/openai/deployments/{deployment}/chat/completions`), where
the model is the deployment's name, and the v1 API (`/openai/v1/chat/completions`), where
the body names the model as at OpenAI. A deployment named after its model (the usual
practice) is priced as that model; any other name is priced from the model the response
reports.
"""

from __future__ import annotations

from providers.base import Credential, KeyPlace, Provider, Route
from providers.openai import CHAT, COMPLETIONS, EMBEDDINGS, RESPONSES, openai_routes
from providers.openai_realtime import REALTIME

__all__ = ["AZURE"]

#: `api-key` (API keys) or `Authorization: Bearer` (Entra ID tokens).
AZURE_CREDENTIAL = Credential((KeyPlace.API_KEY, KeyPlace.BEARER), KeyPlace.API_KEY)

AZURE = Provider(
    "azure",
    title="Azure OpenAI",
    price_provider="azure",
    # public cloud, AI Foundry resources, Azure Government, Azure China
    host_suffixes=(".openai.azure.com", ".cognitiveservices.azure.com", ".services.ai.azure.com",
                   ".openai.azure.us", ".openai.azure.cn"),
    credential=AZURE_CREDENTIAL,
    routes=openai_routes("/openai/v1", completions=False) + (
        Route("/openai/responses", RESPONSES),
        Route("/openai/deployments/{model}/chat/completions", CHAT),
        Route("/openai/deployments/{model}/completions", COMPLETIONS),
        Route("/openai/deployments/{model}/embeddings", EMBEDDINGS),
        Route("/openai/realtime", REALTIME, method="GET",
              note="the deployment in `?deployment=` (priced as that model)"),
        Route("/openai/v1/realtime", REALTIME, method="GET", note="the model in `?model=`"),
    ),
)
