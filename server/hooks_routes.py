"""The inbound webhook faces: POST /hooks/{channel}/{token} with a signed JSON body (calls, SMS, chat, forms,
receipts), and POST /hooks/triggers/{token}, an inbound webhook trigger's own URL.

Answers: 200 with the recording's JSON; 400 for a body that is not a JSON object; 401 for a missing or wrong
signature; 404 for an unknown channel or token; 413 past the size limit; 422 with the fields at fault.
"""

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from server.errors import NotFound, ValidationFailed
from server.services import hooks, triggers, webhooks

MAX_BODY_BYTES = 256 * 1024
MAX_KEY_CHARS = 200


class Refused(Exception):
    def __init__(self, answer: Response) -> None:
        self.answer = answer


async def webhook(request: Request) -> Response:
    channel, token = request.path_params["channel"], request.path_params["token"]
    try:
        body = await _body(request)
        try:
            await hooks.verify(channel, token, body, request.headers.get(hooks.SIGNATURE_HEADER))
        except NotFound:
            return _error(404, "no webhook at this address")
        except hooks.SignatureInvalid as exc:
            return _error(401, str(exc))
        payload, key = _payload(body), _idempotency_key(request)
    except Refused as refused:
        return refused.answer
    try:
        answer = await webhooks.handle(channel, payload, idempotency_key=key)
    except NotFound as exc:
        return _error(404, str(exc))
    except ValidationFailed as exc:
        return _invalid(exc)
    return JSONResponse(answer)


async def trigger_webhook(request: Request) -> Response:
    """An inbound webhook trigger's own URL. The JSON names the element ({"element_type": "deal", "element_id": 42,
    ...}); the whole body is `event.payload` in its condition."""
    try:
        payload = _payload(await _body(request))
        key = _idempotency_key(request)
    except Refused as refused:
        return refused.answer
    try:
        answer = await triggers.receive_webhook(request.path_params["token"], payload, idempotency_key=key)
    except NotFound:
        return _error(404, "no webhook at this address")
    except ValidationFailed as exc:
        return _invalid(exc)
    return JSONResponse({"outcome": answer.outcome, "reason": answer.reason, "activation_id": answer.activation_id,
                         "element": {"type": answer.element_type, "id": answer.element_id},
                         "duplicate": answer.duplicate})


async def _body(request: Request) -> bytes:
    """The raw body, refused (413) past MAX_BODY_BYTES without reading the rest."""
    too_large = Refused(_error(413, f"the body may have at most {MAX_BODY_BYTES // 1024} KiB"))
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_large
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise too_large
    return body


def _payload(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body, parse_constant=_not_json)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Refused(_error(400, f"the body is not JSON: {exc}")) from None
    except RecursionError:
        raise Refused(_error(400, "the body is not JSON this server reads: it is nested too deeply")) from None
    if not isinstance(payload, dict):
        raise Refused(_error(400, "the body must be a JSON object"))
    return payload


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key") or None
    if key is not None and len(key) > MAX_KEY_CHARS:
        raise Refused(_error(422, f"Idempotency-Key may have at most {MAX_KEY_CHARS} characters",
                             field="Idempotency-Key"))
    return key


def _not_json(constant: str) -> object:
    # Python's json reads NaN and Infinity, which JSON has not and PostgreSQL's jsonb refuses when the payload is kept.
    raise ValueError(f"{constant} is not a JSON value")


def _invalid(exc: ValidationFailed) -> Response:
    return JSONResponse({"error": str(exc), "fields": [{"field": e.field, "message": e.message} for e in exc.listed]},
                        status_code=422)


def _error(status: int, message: str, *, field: str | None = None) -> Response:
    body: dict[str, object] = {"error": message}
    if field:
        body["fields"] = [{"field": field, "message": message}]
    return JSONResponse(body, status_code=status)
