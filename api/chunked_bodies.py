"""A body sent in chunks (`Transfer-Encoding: chunked`, no `Content-Length`), as HTTP
clients that stream their body send it: gunicorn decodes the chunks, but Django reads
as many bytes as the request declares, none, and the API would have answered that every
field is missing. Under /api/ such a body is read here, at most one byte more than the
API takes (API_MAX_BODY_BYTES, whose own check then refuses a larger body), and given
its length. Other paths are left as Django has them (browsers send a length)."""

import io

from django.conf import settings

from api import is_api_path


def read_chunked_bodies(application):
    """The WSGI application `application`, reading the API's chunked bodies first."""

    def with_lengths(environ, start_response):
        if (
            is_api_path(environ.get("PATH_INFO", ""))
            and "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
            and not environ.get("CONTENT_LENGTH")
        ):
            body = environ["wsgi.input"].read(settings.API_MAX_BODY_BYTES + 1)
            environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
        return application(environ, start_response)

    return with_lengths
