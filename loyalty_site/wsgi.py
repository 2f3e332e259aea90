import os

from django.core.wsgi import get_wsgi_application

from api.chunked_bodies import read_chunked_bodies
from loyalty_site.web_process import as_web_process

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_site.settings")
as_web_process()
application = read_chunked_bodies(get_wsgi_application())
