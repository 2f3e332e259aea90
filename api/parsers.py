"""JSON read exactly: a number with a fraction becomes a Decimal, never a float (an
amount of 120.10 stays 120.10), NaN or Infinity is refused, and so is a field given
twice (which of two amounts is meant is not for the API to guess)."""

import json
from decimal import Decimal

from django.conf import settings
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser


def _no_constant(name):
    raise ValueError(f"{name} is not a number")


class _GivenTwice(Exception):
    def __init__(self, name: str):
        self.name = name


def _each_once(pairs: list) -> dict:
    fields = dict(pairs)
    if len(fields) < len(pairs):
        seen = set()
        raise _GivenTwice(next(name for name, _ in pairs if name in seen or seen.add(name)))
    return fields


def too_large() -> ParseError:
    """A body over the API's limit (API_MAX_BODY_BYTES), said the same way when Django's
    own, larger, limit (DATA_UPLOAD_MAX_MEMORY_SIZE) refused it before the parser."""
    return ParseError(f"The body is larger than {settings.API_MAX_BODY_BYTES:,} bytes.")


class ExactJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read(settings.API_MAX_BODY_BYTES + 1) if stream else b""
        if len(raw) > settings.API_MAX_BODY_BYTES:
            raise too_large()
        try:
            return json.loads(
                raw, parse_float=Decimal, parse_constant=_no_constant, object_pairs_hook=_each_once
            )
        except _GivenTwice as twice:
            message = "Given twice in the body: send each field once."
            raise ValidationError({twice.name: [message]}) from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"The body is not JSON: {exc}") from None
        except ArithmeticError:  # a number Decimal cannot hold (1e100000000000000000000)
            raise ParseError("The body is not JSON the API reads: a number too large.") from None
        except RecursionError:  # arrays or objects nested thousands deep
            raise ParseError("The body is not JSON the API reads: nested too deep.") from None
