"""SMS through a generic HTTP/JSON gateway: POST {to, from, text, reference} with the configured
Authorization header and an Idempotency-Key, so a repeated attempt at one message is one SMS at a gateway
that honours the key.

The gateway answers 2xx with JSON carrying its id (`id`, `message_id` or `sid`), which delivery receipts
name. 429 and 5xx are transient (retried), any other 4xx permanent.
"""

import json

import httpx

from server.channels.transports import PermanentSendError, Sent, TransientSendError
from server.config import settings
from server.models import Message


class HttpSmsGateway:
    name = "http"

    def __init__(self, url: str, *, auth: str = "") -> None:
        self.url = url
        self.auth = auth

    async def send(self, message: Message) -> Sent:
        headers = {"Idempotency-Key": message.uid, "Content-Type": "application/json"}
        if self.auth:
            headers["Authorization"] = self.auth
        body = {"to": message.recipient, "from": message.sender, "text": message.text, "reference": message.uid}
        timeout = settings().send_timeout_s
        try:
            async with httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=min(timeout, 10))) as client:
                response = await client.post(self.url, headers=headers, content=json.dumps(body))
        except httpx.HTTPError as exc:
            raise TransientSendError(f"{type(exc).__name__}: {exc}") from exc
        answer = f"{response.status_code} {response.text[:500]}".strip()
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientSendError(answer)
        if response.status_code >= 400:
            raise PermanentSendError(answer)
        provider_id = None
        try:
            data = response.json()
            if isinstance(data, dict):
                provider_id = next((str(data[k]) for k in ("id", "message_id", "sid") if data.get(k)), None)
        except ValueError:
            pass
        return Sent(answer=answer, provider_id=provider_id)
