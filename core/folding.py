"""Names as staff search them: without accents and case. A CX agent in Spain types
"munoz" for Muñoz and "jose" for José; the admin's search compares
`last_name__folded__startswith`, both sides folded.

On PostgreSQL the folding is the `unaccent` extension's (a trusted extension, which the
database's owner creates in members' migration 0032) in an IMMUTABLE function, so that
an index on the folded column answers a prefix search at a million members. SQLite
folds in Python (development data only): letters lose their accents as Unicode
decomposes them, where unaccent also maps a few that do not decompose (Ł, Ø, ß)."""

import unicodedata

from django.db.backends.signals import connection_created
from django.db.models import CharField, Transform

FOLD_FUNCTION = "loyalty_folded"

# The function the index and the search share. unaccent is only STABLE (its dictionary
# could change), so it is wrapped as IMMUTABLE, schema-qualified for a restore's empty
# search_path, as the extension's documentation suggests for indexes.
CREATE_FOLD_FUNCTION = f"""
CREATE OR REPLACE FUNCTION {FOLD_FUNCTION}(text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$ SELECT upper(public.unaccent('public.unaccent'::regdictionary, $1)) $$
"""


def folded(text: str) -> str:
    """`text` without its accents and in capitals, as SQLite's loyalty_folded reads it."""
    if text is None:
        return None
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).upper()


@CharField.register_lookup
class Folded(Transform):
    """A text column compared folded (`__folded__startswith`): bilateral, so the
    searched term is folded by the same function."""

    lookup_name = "folded"
    function = FOLD_FUNCTION
    bilateral = True


def _on_sqlite_connection(sender, connection, **kwargs):
    if connection.vendor == "sqlite":
        connection.connection.create_function(FOLD_FUNCTION, 1, folded, deterministic=True)


connection_created.connect(_on_sqlite_connection)
