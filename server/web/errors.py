"""Errors the API answers with: one hierarchy, mapped once to a status and a JSON body
`{"error": code, "detail": text, "request_id": id}` by the middleware in server/app.py."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, detail: str, *, extra: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.detail = detail
        self.extra = extra or {}
        self.headers = headers or {}


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"


class Unprocessable(ApiError):
    status, code = 422, "invalid_events"


class TooManyRequests(ApiError):
    status, code = 429, "rate_limited"


class InvalidItems(ApiError):
    status, code = 422, "invalid_items"


class InvalidRules(ApiError):
    status, code = 422, "invalid_rules"


class Unavailable(ApiError):
    status, code = 503, "unavailable"


# Codes for aiohttp's own HTTP exceptions (unknown route, wrong method, body too large...).
HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed",
              413: "payload_too_large", 415: "unsupported_media_type"}
