"""Refusing cross-site writes by their Origin (or Referer) header, besides the CSRF token.

A browser names the page a request came from: ``Origin`` on every POST, PUT, PATCH and
DELETE it sends today, ``Referer`` otherwise (unless a policy strips it). A write whose
login session came with the browser's cookies is refused (403) when either names another
site (OWASP ASVS V4.2.2, the OWASP CSRF Cheat Sheet's "verifying origin with standard
headers"), and also when ``Sec-Fetch-Site`` says ``cross-site``. A request with neither
header, or with a relative Referer, is judged by the CSRF token alone.

"This site" is the request's host as the app sees it (the ``Host`` header, which a
reverse proxy must pass through). The scheme may be upgraded but not downgraded: an
``https://`` origin is accepted on a request that reached the app over plain HTTP (a
proxy terminated TLS and ``PROXY_FIX`` is not set), an ``http://`` origin on an HTTPS
request is not. Requests authenticated by a bearer token are not checked (a browser does
not add the token by itself), nor views a plugin exempted from CSRF (signed webhooks).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import SplitResult, urlsplit

from werkzeug.datastructures import Headers
from werkzeug.exceptions import Forbidden

_DEFAULT_PORTS = {"http": 80, "https": 443}


class ForeignOrigin(Forbidden):
    """A write refused because the browser says it came from another site (403).

    Screens tell the user so (they may have followed a link or a form from elsewhere),
    rather than the generic "no permission" page; the API answers its 403 envelope.
    """

    description = "The request came from another site, so it was refused."


def _site(scheme: str, netloc: str) -> tuple[str, int | None] | None:
    """The (host, explicit port) of ``netloc`` (a default port of ``scheme`` dropped); None if malformed."""
    try:
        parts = urlsplit(f"{scheme}://{netloc}")
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host:
        return None
    return host.rstrip(".").lower(), None if port == _DEFAULT_PORTS.get(scheme) else port


def _split(url: str) -> SplitResult | None:
    """``url``'s parts, or None when it cannot be parsed (an unclosed IPv6 bracket)."""
    try:
        return urlsplit(url)
    except ValueError:
        return None


def _same_site(url: str, scheme: str, host: str) -> bool:
    """Whether the absolute ``url`` is on ``scheme://host`` (https may stand for http)."""
    parts = _split(url)
    if parts is None or parts.scheme not in _DEFAULT_PORTS or (parts.scheme == "http" and scheme == "https"):
        return False
    theirs = _site(parts.scheme, parts.netloc)
    return theirs is not None and theirs == _site(scheme, host)


def foreign_origin(headers: Mapping[str, str] | Headers, scheme: str, host: str) -> str | None:
    """Why a request to ``scheme://host`` with ``headers`` comes from another site, or None.

    ``headers`` are the request's (``Origin``, ``Referer``, ``Sec-Fetch-Site``).
    """
    if headers.get("Sec-Fetch-Site", "").strip().lower() == "cross-site":
        return "Sec-Fetch-Site: cross-site"
    origin = headers.get("Origin")
    if origin is not None:
        return None if _same_site(origin.strip(), scheme, host) else f"Origin {origin[:100]!r}"
    referer = (headers.get("Referer") or "").strip()
    if not referer:
        return None
    parts = _split(referer)
    if parts is None:
        return f"Referer {referer[:100]!r}"
    if not parts.scheme and not parts.netloc and not referer.startswith(("//", "\\")):
        return None  # a relative Referer: this site
    return None if _same_site(referer, scheme, host) else f"Referer {referer[:100]!r}"
