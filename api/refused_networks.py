"""Where webhooks are never sent (server-side request forgery): the networks of
WEBHOOK_REFUSED_NETWORKS, by default this machine (its other services: Redis, the
database, an admin port) and the link-local network (a cloud provider's metadata at
169.254.169.254, which hands out the machine's credentials). Checked when a superuser
saves a receiver's URL written as an address, and again as each post connects, on the
address it reached: a name may point anywhere, and anywhere else later."""

import ipaddress
import socket

from django.conf import settings
from urllib3.exceptions import NewConnectionError


def refused_network(address: str):
    """The refused network holding `address` (an IP address as text), or None."""
    ip = ipaddress.ip_address(address.split("%")[0])  # an IPv6 zone ("fe80::1%eth0") aside
    ip = getattr(ip, "ipv4_mapped", None) or ip  # ::ffff:127.0.0.1 is 127.0.0.1
    return next((net for net in settings.WEBHOOK_REFUSED_NETWORKS if ip in net), None)


def written_address(host: str) -> str | None:
    """The address a URL's host is written as (in any form the sender's resolver reads:
    127.1, 2130706433, 0x7f000001), "localhost" as 127.0.0.1; None for a name."""
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return "127.0.0.1"
    try:
        ip = ipaddress.ip_address(host)
        return str(getattr(ip, "ipv4_mapped", None) or ip)  # ::ffff:127.0.0.1 as 127.0.0.1
    except ValueError:
        try:
            return socket.inet_ntoa(socket.inet_aton(host))
        except OSError:
            return None


def refusal(host: str, address: str, network) -> str:
    named = host if host == address else f"{host} ({address})"
    return (
        f"{named} is in {network}, where webhooks are not sent "
        "(WEBHOOK_REFUSED_NETWORKS: this machine and the cloud's metadata, unless "
        "the setting says otherwise)."
    )


class RefusedNetwork(NewConnectionError):
    """A post's connection closed as it reached a refused network: `refusal` says so."""

    def __init__(self, connection, refusal: str):
        super().__init__(connection, refusal)
        self.refusal = refusal


def check_connected(connection, sock: socket.socket) -> None:
    """Close a post's new connection that reached a refused network, before a byte of
    the event is sent; the post fails as a network error, naming why. Through an HTTP
    proxy (HTTP_PROXY, HTTPS_PROXY) the proxy connects, and decides."""
    if getattr(connection, "proxy", None):
        return
    address = sock.getpeername()[0]
    if network := refused_network(address):
        sock.close()
        raise RefusedNetwork(connection, refusal(connection.host, address, network))
