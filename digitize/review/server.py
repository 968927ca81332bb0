"""Serving the review app: loopback only unless the operator says otherwise.

The page shows citizens' data and changes signed records, so by default it listens on
127.0.0.1 only; a non-loopback address (``0.0.0.0``, a LAN address, a name that resolves to
one) is refused with ``RemoteBindError`` unless ``allow_remote`` is given explicitly. The
``Host`` header must be one of the names the server answers to (loopback names with the port,
the bound address, and any ``extra_hosts``), which defeats DNS rebinding.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import TYPE_CHECKING

from digitize.errors import RemoteBindError

if TYPE_CHECKING:
    from werkzeug.serving import BaseWSGIServer

    from digitize.review.app import ReviewApp

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def is_loopback(host: str) -> bool:
    """True when every address ``host`` names is a loopback address."""
    name = host.strip("[]")
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(name, None)
    except socket.gaierror:
        return False
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(str(a).split("%")[0]).is_loopback
                                   for a in addresses)


def check_bind(host: str, allow_remote: bool) -> None:
    if not allow_remote and not is_loopback(host):
        raise RemoteBindError(
            f"refusing to listen on {host}: the review page shows personal data and changes "
            "signed records", hint="use 127.0.0.1, or pass --allow-remote if you mean it")


def allowed_hosts(host: str, port: int, extra_hosts: tuple[str, ...] = ()) -> frozenset[str]:
    """``Host`` header values the server accepts (lower case, with the port)."""
    names = set(LOOPBACK_NAMES)
    bound = host.strip("[]")
    if bound not in ("0.0.0.0", "::", ""):
        names.add(f"[{bound}]" if ":" in bound else bound)
    names.update(h.lower() for h in extra_hosts)
    return frozenset(f"{n.lower()}:{port}" for n in names)


def make_review_server(app: ReviewApp, host: str, port: int, *,
                       allow_remote: bool = False) -> BaseWSGIServer:
    """A threaded WSGI server bound to ``host:port`` (port 0: a free port); the app's allowed
    hosts are set from the port actually bound."""
    from werkzeug.serving import make_server

    check_bind(host, allow_remote)
    server = make_server(host, port, app, threaded=True)
    extra = tuple(h.rsplit(":", 1)[0] for h in app.settings.allowed_hosts)
    app.settings.allowed_hosts = allowed_hosts(host, server.server_port, extra)
    return server
