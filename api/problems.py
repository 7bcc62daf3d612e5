"""RFC 9457 problem details for every error the API returns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.errors import DomainRejection

PROBLEM = "application/problem+json"


class Problem(Exception):
    """An error answered as problem JSON; ``kind`` becomes the type URI's last part."""

    def __init__(self, status: int, title: str, detail: str | None = None,
                 kind: str | None = None, **extra: Any) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.kind = kind or title.lower().replace(" ", "-")
        self.extra = extra
        self.headers: dict[str, str] = {}  # e.g. Retry-After on a 503


def problem_body(status: int, title: str, detail: str | None, kind: str,
                 instance: str | None = None, **extra: Any) -> dict[str, Any]:
    """An RFC 9457 problem document, for the app and for the server layer below it."""
    body: dict[str, Any] = {"type": f"https://pmo-ledger.dev/problems/{kind}", "title": title,
                            "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extra)
    return body


def problem_response(status: int, title: str, detail: str | None, kind: str,
                     instance: str | None = None, headers: Mapping[str, str] | None = None,
                     **extra: Any) -> JSONResponse:
    body = problem_body(status, title, detail, kind, instance, **extra)
    sent = dict(headers or {})
    if status == 401:
        sent["WWW-Authenticate"] = "Bearer"
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=sent or None)


def install(app: FastAPI) -> None:
    """One handler per error class, so routes never format errors themselves."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        response = problem_response(exc.status, exc.title, exc.detail, exc.kind,
                                    request.url.path, **exc.extra)
        response.headers.update(exc.headers)
        return response

    @app.exception_handler(DomainRejection)
    async def _rejection(request: Request, exc: DomainRejection) -> JSONResponse:
        return problem_response(409, "Rejected by the PMO's rules", exc.reason, exc.code,
                                request.url.path, reason=exc.reason)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors)
        return problem_response(422, "Invalid request", detail, "invalid-request",
                                request.url.path, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = {404: "Not found", 405: "Method not allowed", 401: "Unauthorized",
                 403: "Forbidden", 413: "Content too large"}.get(exc.status_code, "HTTP error")
        # The router's own headers stay: 405 carries ``Allow``, where HEAD goes with GET
        # (api.edges answers HEAD as GET).
        headers = dict(exc.headers or {})
        allow = [m.strip() for m in headers.get("Allow", "").split(",") if m.strip()]
        if "GET" in allow and "HEAD" not in allow:
            headers["Allow"] = ", ".join(sorted([*allow, "HEAD"]))
        return problem_response(exc.status_code, title, str(exc.detail), title.lower().replace(
            " ", "-"), request.url.path, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Still problem JSON; the server logs the exception itself (it is re-raised).
        return problem_response(500, "Internal server error",
                                "the service could not answer; the error is logged",
                                "internal-error", request.url.path)
