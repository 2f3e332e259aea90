"""Every error as application/problem+json (RFC 9457): type, title, status, detail, and
`errors: [{field, message}]` for input. A rule the services refuse (a Django
ValidationError) is 422, or 409 when it says an external_id was used with other
content (code "conflict"), or 404 when all it says is that what a field names does not
exist (code "unknown"): core.refusals."""

from django.core.exceptions import (
    NON_FIELD_ERRORS,
    DisallowedHost,
    RequestDataTooBig,
    SuspiciousOperation,
)
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import OperationalError
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler, set_rollback

from api import is_api_path
from api.parsers import too_large
from core.refusals import CONFLICT, UNKNOWN
from core.unavailable import RETRY_AFTER_SECONDS, UNAVAILABLE, unavailable_logged

PROBLEM = "application/problem+json"
TYPES = "https://loyalty.example.com/problems/"  # a stable identifier per kind of problem


class Unknown(exceptions.NotFound):
    """A 404 for what a field of the body names (a member, a reward, a definition): the
    problem's errors name the field, so a till can tell which id was unknown."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def problem_body(status_code: int, title: str, detail: str, *, errors=None) -> dict:
    """An RFC 9457 problem: its type named after its title."""
    body = {
        "type": TYPES + title.lower().replace(" ", "-"),
        "title": title,
        "status": status_code,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    return body


def problem(status_code: int, title: str, detail: str, *, errors=None, headers=None):
    body = problem_body(status_code, title, detail, errors=errors)
    return Response(body, status=status_code, headers=headers, content_type=PROBLEM)


def _problem_page(status_code: int, title: str, detail: str) -> JsonResponse:
    """A problem answered outside DRF (Django's own 400 and 500), with its one error of
    no field, as DRF's input errors have theirs."""
    body = problem_body(status_code, title, detail, errors=[{"field": None, "message": detail}])
    return JsonResponse(body, status=status_code, content_type=PROBLEM)


def field_errors(detail, prefix="") -> list[dict]:
    """DRF's nested error detail as a flat [{field, message}] list."""
    if isinstance(detail, dict):
        return [
            error
            for name, value in detail.items()
            for error in field_errors(value, f"{prefix}.{name}" if prefix else str(name))
        ]
    if isinstance(detail, list):
        return [error for item in detail for error in field_errors(item, prefix)]
    field = None if prefix in ("", api_settings.NON_FIELD_ERRORS_KEY) else prefix
    return [{"field": field, "message": str(detail)}]


def rule_refused(exc: DjangoValidationError):
    """A service's ValidationError: 422, or 409 for an idempotency conflict, or 404 when
    all it says is that what a field names does not exist (core.refusals)."""
    pairs = exc.error_dict.items() if hasattr(exc, "error_dict") else [(None, exc.error_list)]
    errors, codes = [], set()
    for name, found in pairs:
        for error in found:
            codes.add(error.code)
            field = None if name in (None, NON_FIELD_ERRORS) else name
            errors += [{"field": field, "message": message} for message in error.messages]
    detail = " ".join(error["message"] for error in errors)
    if CONFLICT in codes:
        return problem(409, "Conflict", detail, errors=errors)
    if codes == {UNKNOWN}:  # a member a field names (referred_by) that does not exist
        return problem(404, "Not found", detail, errors=errors)
    return problem(422, "Refused", detail, errors=errors)


def _another_scheme(request) -> exceptions.NotAuthenticated | None:
    """No key, but an Authorization header of another scheme ("Bearer <key>", which a
    generated client sends unless told): say how to send the key."""
    given = request.headers.get("Authorization", "").split(" ", 1)[0]
    if not given or given == "Api-Key":  # an empty key is simply none
        return None
    return exceptions.NotAuthenticated(
        f'Send the API key as "Authorization: Api-Key <key>", not "{given[:20]} ...".'
    )


def problem_handler(exc, context):
    """DRF's exception handler, answering every error as a problem, in JSON whatever
    the view answers when all is well (the schema's YAML, the docs' HTML)."""
    if (request := context.get("request")) is not None:
        request.accepted_renderer, request.accepted_media_type = JSONRenderer(), PROBLEM
    if isinstance(exc, DjangoValidationError):
        return rule_refused(exc)
    if isinstance(exc, OperationalError):  # the database away, or a row held too long
        unavailable_logged(exc, context.get("request"))
        set_rollback()
        detail = (
            f"{UNAVAILABLE} Send the same request again: its external_id makes a write count once."
        )
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        return problem(503, "Service unavailable", detail, headers=headers)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    if isinstance(exc, RequestDataTooBig):  # Django's own limit, read before the parser's
        exc = too_large()
    elif isinstance(exc, SuspiciousOperation):  # Django's other limits (too many fields)
        exc = exceptions.ParseError(f"The request is not one the API reads: {exc}")
    response = exception_handler(exc, context)
    if response is None:
        return None  # not an API error: Django's 500, logged
    headers = {name: value for name, value in response.items() if name != "Content-Type"}
    if isinstance(exc, exceptions.ValidationError):
        return problem(
            400,
            "Invalid input",
            "The request has invalid fields.",
            errors=field_errors(exc.detail),
            headers=headers,
        )
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        response.status_code = status.HTTP_401_UNAUTHORIZED
    if isinstance(exc, exceptions.NotAuthenticated) and request is not None:
        exc = _another_scheme(request) or exc
    title = {
        400: "Bad request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not found",
        405: "Method not allowed",
        406: "Not acceptable",
        415: "Unsupported media type",
        429: "Too many requests",
    }.get(response.status_code, "Error")
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    # input wrong as a whole (not JSON, too large): one error, of no field
    errors = [{"field": None, "message": detail}] if response.status_code == 400 else None
    if isinstance(exc, Unknown):
        errors = [{"field": exc.field, "message": detail}]
    return problem(response.status_code, title, detail, errors=errors, headers=headers)


def server_error(request):
    """Django's 500, for a fault of ours: a problem under /api/ too, so that a till reads
    it as it reads every API error (Django's page elsewhere). It says nothing of the
    fault, which the server's log has."""
    if not is_api_path(request.path):
        return defaults.server_error(request)
    detail = (
        "The server failed to answer. Send the same request again: its external_id makes a "
        "write count once."
    )
    return _problem_page(500, "Server error", detail)


def bad_request(request, exception):
    """Django's own 400, refused before any view (a Host that is not this application's,
    ALLOWED_HOSTS): a problem under /api/, as every API error; Django's page elsewhere."""
    if not is_api_path(request.path):
        return defaults.bad_request(request, exception)
    if isinstance(exception, DisallowedHost):
        detail = "The Host header names no host of this application."
    else:
        detail = "The request is not one the API reads."
    return _problem_page(400, "Bad request", detail)
