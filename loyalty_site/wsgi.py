import os

from django.core.wsgi import get_wsgi_application

from api.chunked_bodies import read_chunked_bodies

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_site.settings")
# The web's requests wait at most 10 s for a row lock, then answer 503 (settings).
os.environ.setdefault("DATABASE_LOCK_TIMEOUT", "10s")
application = read_chunked_bodies(get_wsgi_application())
