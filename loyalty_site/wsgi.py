import os

from django.core.wsgi import get_wsgi_application

from api.chunked_bodies import read_chunked_bodies

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_site.settings")
application = read_chunked_bodies(get_wsgi_application())
