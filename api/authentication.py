"""`Authorization: Api-Key <key>`: the request is made by the key's account, and
`request.auth` is the key (its channel and store)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework_api_key.permissions import KeyParser

from api.models import ApiKey

WRONG_KEY = "This API key is wrong or revoked."


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = KeyParser.keyword

    def authenticate(self, request):
        secret = KeyParser().get(request)
        if not secret:
            return None  # no key: 401 through authenticate_header
        if not (secret.isascii() and secret.isprintable()):  # no key holds these (a NUL:
            raise exceptions.AuthenticationFailed(WRONG_KEY)  # PostgreSQL refuses it)
        try:
            key = ApiKey.objects.get_from_key(secret)
        except ApiKey.DoesNotExist:
            raise exceptions.AuthenticationFailed(WRONG_KEY) from None
        if key.has_expired:
            raise exceptions.AuthenticationFailed("This API key has expired.")
        key.mark_used()
        return key.user, key

    def authenticate_header(self, request):
        return self.keyword  # a WWW-Authenticate header: DRF answers 401, not 403


class KeyFirstNegotiation(DefaultContentNegotiation):
    """An Accept header the API cannot answer is a 406, but without a valid key a
    resource answers 401 first, as it does for a body it cannot read (DRF chooses the
    answer's format before it authenticates)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except exceptions.NotAcceptable:
            view = request.parser_context["view"]
            view.perform_authentication(request)
            view.check_permissions(request)  # the schema and docs need no key
            raise


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """The key in the schema: `Authorization: Api-Key <key>`."""

    target_class = ApiKeyAuthentication
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`, as shown once when a superuser creates it.",
        }
