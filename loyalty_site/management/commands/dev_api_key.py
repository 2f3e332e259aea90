from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from api.models import ApiKey
from api.services import create_api_key, revoke_api_key

NAME, CHANNEL, STORE = "Demo till", ApiKey.Channel.POS, "STORE-DEMO"


class Command(BaseCommand):
    help = (
        'A fresh API key "Demo till" (channel pos, store STORE-DEMO) for the demo, printed '
        "with the API's address and a curl line to try them (the README's examples use both); "
        "the previous one is revoked (DEBUG only)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1:8000", help="where the demo listens")

    def handle(self, *, host, **options):
        if not settings.DEBUG:
            raise CommandError("Refusing to create a development API key with DEBUG off.")
        for old in ApiKey.objects.filter(name=NAME, revoked=False):
            revoke_api_key(key=old)
        _, secret = create_api_key(name=NAME, channel=CHANNEL, store=STORE)
        self.stdout.write(
            f"Demo API key ({NAME}: channel {CHANNEL}, store {STORE}; development only):\n"
            f"  export API_KEY={secret} API=http://{host}/api/v1\n"
            f'  curl -H "Authorization: Api-Key $API_KEY" $API/members/M-00001'
        )
