"""A JSON POST for the providers not yet on their SDK (``anthropic``): errors as
:class:`~chorus_agents.models.base.ModelError`, retryable where another try may help."""

from __future__ import annotations

from typing import Any

import httpx

from chorus_agents.models.base import ModelError


async def post_json(
    client: httpx.AsyncClient, url: str, body: Any, headers: dict[str, str], where: str
) -> Any:
    """POSTs ``body``; the parsed JSON answer, or a :class:`ModelError` saying what failed."""
    try:
        response = await client.post(url, json=body, headers=headers)
    except httpx.TimeoutException:
        raise ModelError(f"{where}: timed out ({url})", retryable=True) from None
    except httpx.TransportError as exc:
        raise ModelError(f"{where}: cannot reach {url}: {exc}", retryable=True) from None
    if response.status_code >= 400:
        raise ModelError.for_status(where, response.status_code, _detail(response))
    try:
        return response.json()
    except ValueError:
        raise ModelError(f"{where}: the answer is not JSON") from None


def _detail(response: httpx.Response) -> str:
    """The provider's error message (both OpenAI and Anthropic nest it as ``error.message``)."""
    try:
        error = response.json().get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:500]
    except (ValueError, AttributeError):
        pass
    return response.text[:500] or response.reason_phrase
