"""The CX Manager's answer when the database cannot serve a page in time (core.unavailable):
a 503 page saying so, instead of the bare "Server Error (500)". The API answers its own
problem (api.errors)."""

from django.db import OperationalError
from django.template.response import SimpleTemplateResponse

from api import is_api_path
from core.unavailable import RETRY_AFTER_SECONDS, UNAVAILABLE, unavailable_logged


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, OperationalError) or is_api_path(request.path):
            return None
        unavailable_logged(exception, request)
        # Rendered without the request's context: it would read the session and the
        # user from the database that did not answer.
        response = SimpleTemplateResponse("503.html", {"detail": UNAVAILABLE}, status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
