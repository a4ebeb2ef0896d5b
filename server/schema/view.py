"""The GraphQL endpoint: bearer-token authentication, a request body limit, websocket limits.

Websockets speak graphql-transport-ws only (the legacy graphql-ws protocol would need its own
access checks); `schema/sockets.py` keeps checking their access while they are open.
"""

from functools import partial

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.schema import BaseSchema
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UnsetType

from server import live
from server.config import settings
from server.http import BodyLimit, BodyTooLarge, limited_receive
from server.schema import ide
from server.schema.context import Context
from server.schema.sockets import AccessCheckedSocket
from server.services import tokens


def _bearer(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, secret = value.strip().partition(" ")
    return secret.strip() if scheme.lower() == "bearer" and secret.strip() else None


def _refusal(status: int, message: str) -> Response:
    headers = {"WWW-Authenticate": 'Bearer realm="pipewright"'} if status == 401 else None
    return JSONResponse({"data": None, "errors": [{"message": message}]}, status_code=status, headers=headers)


class PipewrightGraphQL(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = AccessCheckedSocket

    def __init__(self, schema: BaseSchema, *, development: bool) -> None:
        config = settings()
        super().__init__(
            schema,
            graphql_ide="graphiql" if development else None,
            allow_queries_via_get=False,  # GET would allow cross-site requests with a cached token; POST only
            max_subscriptions_per_connection=config.max_subscriptions,
            allowed_origins=config.ws_origins,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        )
        self.max_body = config.max_body_bytes
        self.development = development

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        if request.method == "GET" and self.development and "text/html" in request.headers.get("accept", ""):
            await super().__call__(scope, receive, send)  # the GraphiQL page; its queries carry a token
            return
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await _refusal(413, f"request body larger than {self.max_body} bytes")(scope, receive, send)
            return
        actor = None
        secret = _bearer(request.headers.get("authorization"))
        if secret is not None:
            actor = await tokens.authenticate(secret)
        if actor is None:
            message = ("authentication required: send Authorization: Bearer <API token>" if secret is None
                       else "the API token is unknown, revoked, or its user is deactivated")
            await _refusal(401, message)(scope, receive, send)
            return
        scope.setdefault("state", {})["actor"] = actor
        try:
            await super().__call__(scope, limited_receive(receive, BodyLimit(self.max_body)), send)
        except BodyTooLarge:
            await _refusal(413, f"request body larger than {self.max_body} bytes")(scope, receive, send)

    async def render_graphql_ide(self, request: Request) -> Response:
        return ide.page()  # our own copy of GraphiQL instead of strawberry's page, which loads it from a CDN

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        actor = request.scope.get("state", {}).get("actor") if isinstance(request, Request) else None
        return Context(actor=actor, request=request, response=response)

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Websockets authenticate in connection_init: {"authorization": "Bearer <token>"} (or {"token": ...}).

        Raises `live.TooManySockets` when the user or token holds as many sockets as allowed.
        """
        params = context.connection_params or {}
        secret = _bearer(params.get("authorization") or params.get("Authorization"))
        if secret is None and isinstance(params.get("token"), str):
            secret = params["token"]
        found = await live.read_access(partial(tokens.identify, secret)) if secret else None
        if found is None:
            raise ConnectionRejectionError({"message": "authentication required: a valid API token in connection_init"})
        token_id, actor = found
        context.actor = actor
        if context.connection is not None:
            live.hub.open(context.connection, token_id=token_id, actor=actor)
        return {"user_id": str(actor.user_id), "role": actor.role}
