import os

from django.core.wsgi import get_wsgi_application

from api.chunked_bodies import read_chunked_bodies

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_site.settings")
# The web's requests wait at most 2 s for a row lock, then answer 503 (settings): a
# request waiting holds one of the web's threads, and a job holds its members for long.
os.environ.setdefault("DATABASE_LOCK_TIMEOUT", "2s")
application = read_chunked_bodies(get_wsgi_application())
