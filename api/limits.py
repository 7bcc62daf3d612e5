"""The request body limit (CONTRACT section 3: 413 over ``max_body_bytes``).

Checked twice: on ``Content-Length`` before anything is read, and on the bytes
actually streamed, because a chunked request has no length and a client may lie.
A pure ASGI middleware, so requests without a body pay almost nothing.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import Problem, problem_response


class BodyTooLarge(Problem):
    """The request body is over the configured limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, "Content too large",
                         f"the request body is over the {limit}-byte limit (PMO_MAX_BODY_BYTES)",
                         kind="content-too-large", limit=limit)


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.max_bytes:
                    await self._refuse(scope, receive, send)
                    return
                break
        received = 0
        started = over = False

        async def counting_receive() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    over = True
                    raise BodyTooLarge(self.max_bytes)  # answered by the Problem handler
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if over:
                    # The handler that answered the 413 does not know the rest of the body
                    # is still unread: the server must close rather than parse it as the
                    # next request.
                    message = {**message, "headers": [
                        *[(k, v) for k, v in message.get("headers", ()) if k != b"connection"],
                        (b"connection", b"close")]}
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send)  # read outside a route's handlers

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = BodyTooLarge(self.max_bytes)
        response = problem_response(error.status, error.title, error.detail, error.kind,
                                    scope.get("path"), **error.extra)
        response.headers["Connection"] = "close"  # the unread body must not be parsed as a request
        await response(scope, receive, send)
