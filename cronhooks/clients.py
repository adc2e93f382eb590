"""Who is calling: the client's address, and whether its network may call.

The address is ``REMOTE_ADDR``, the peer that opened the connection, unless
that peer is one of ``CRONHOOKS["TRUSTED_PROXIES"]``: only then is the
address taken from the header the proxy writes (``RATE_LIMITS["IP_HEADER"]``,
``X-Forwarded-For`` by default), walking its hops from the right past the
project's own proxies to the first one that is not. A caller reaching the app
directly cannot choose its address with a header, so neither the rate limits
nor ``ALLOWED_NETWORKS`` nor the run's ``client`` can be fooled that way.

Why not django-ipware or django-xff: both read project-wide settings of
their own (``IPWARE_META_PRECEDENCE_ORDER``, ``XFF_TRUSTED_PROXY_DEPTH``)
that cronhooks' one ``CRONHOOKS`` dict cannot set, and ipware trusts proxies
by count or by address prefix strings rather than by network. The walk below
is the part that fits: a dozen lines over the standard ``ipaddress`` module.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

from django.http import HttpRequest

from cronhooks.conf import conf
from cronhooks.exceptions import NetworkNotAllowed
from cronhooks.log import get_logger

logger = get_logger()

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_IP_HEADER = "X-Forwarded-For"


def parse_network(value: object) -> Network:
    """A CIDR (``"10.0.0.0/8"``) or one address as a network; ``ValueError``
    otherwise, host bits set (``"10.0.0.1/8"``) included: such a typo would
    otherwise allow, or trust, more or other hosts than meant."""
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a string")
    return ipaddress.ip_network(value.strip())


@lru_cache(maxsize=16)
def _networks(values: tuple[object, ...]) -> tuple[Network, ...]:
    usable = []
    for value in values:
        try:
            usable.append(parse_network(value))
        except ValueError:
            continue  # reported by the system checks (cronhooks.E040)
    return tuple(usable)


def networks(setting: str) -> tuple[Network, ...]:
    """The usable networks of ``ALLOWED_NETWORKS`` or ``TRUSTED_PROXIES``.

    An entry that is not a network is left out, which never widens either
    setting: fewer networks allowed, fewer proxies believed.
    """
    return _networks(tuple(conf.value(setting)))


def parse_address(value: str) -> Address | None:
    """An address as a peer or a proxy header gives it, or None.

    An IPv4-mapped IPv6 address is the IPv4 host it maps. A zone
    ("fe80::1%eth0") is local to one host, never a remote caller's.
    """
    value = value.strip()
    if "%" in value:
        return None
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _within(address: Address, networks: Iterable[Network]) -> bool:
    return any(address in network for network in networks)


def client_address(request: HttpRequest) -> str:
    """The caller's address, as the rate limits, the allowlist and the run
    record all see it; ``REMOTE_ADDR`` as given if it is not an address."""
    remote = str(request.META.get("REMOTE_ADDR", ""))
    peer = parse_address(remote)
    if peer is None:
        return remote
    trusted = networks("TRUSTED_PROXIES")
    if not _within(peer, trusted):
        return str(peer)
    header = conf.rate_limits["IP_HEADER"] or DEFAULT_IP_HEADER
    # Each proxy appends the address it saw, so hops are read from the right:
    # those written by the project's proxies are believed as long as the hop
    # that wrote them was trusted; the first untrusted one is the caller, and
    # whatever is left of it the caller wrote and may have forged.
    client = peer
    for hop in reversed(request.headers.get(header, "").split(",")):
        address = parse_address(hop)
        if address is None:
            break  # garbage: the last hop believed is as far as one can see
        client = address
        if not _within(address, trusted):
            break
    return str(client)


def check_network(request: HttpRequest) -> None:
    """Refuse a caller outside ``ALLOWED_NETWORKS``, when it is set."""
    if not conf.value("ALLOWED_NETWORKS"):
        return
    address = client_address(request)
    parsed = parse_address(address)
    if parsed is None or not _within(parsed, networks("ALLOWED_NETWORKS")):
        logger.warning("network_not_allowed", client=address)
        raise NetworkNotAllowed(
            f"Requests from {address[:64]!r} are not allowed "
            "(CRONHOOKS['ALLOWED_NETWORKS'])."
        )
