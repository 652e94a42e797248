"""Who may use the server: auth modes, API keys, trusted proxy headers, rate limits.

Three modes (``Settings.auth``):

- ``none``: everyone on the machine; users are told apart by client address:
  the TCP peer, or, when the peer is one of ``RAG_TRUSTED_PROXIES`` (a reverse
  proxy such as nginx), the nearest untrusted address in ``X-Forwarded-For``.
  Loopback addresses count as one client, an IPv6 client by its /64.
  ``rag.serve.server.serve`` refuses a non-loopback host in this mode unless
  ``--insecure`` is given.
- ``api-key``: ``Authorization: Bearer KEY`` with a key from ``RAG_API_KEYS``
  or ``RAG_API_KEYS_FILE``. Keys are compared in constant time and never
  logged or served; a user is named by a short hash of the key.
- ``trusted-header``: a portal's reverse proxy passes the signed-in user in a
  header (``X-Forwarded-User``); it is believed only when the TCP peer is one of
  ``RAG_TRUSTED_PROXIES`` (addresses or CIDR networks).

This module knows nothing about HTTP frameworks: callers hand it the header
values and the peer address. It does not do CORS or framing (see ``server``).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rag.config import Settings
from rag.errors import RagError

MODES = ("none", "api-key", "trusted-header")
_Net = ipaddress.IPv4Network | ipaddress.IPv6Network


class AuthError(RagError):
    """The request does not say who sent it, or says it wrongly (HTTP 401)."""


@dataclass(frozen=True)
class User:
    """The caller of one request; ``id`` keys the rate limit and feedback records."""

    id: str
    name: str = ""  # shown to the user (trusted-header mode); never a key


def load_keys(settings: Settings) -> tuple[str, ...]:
    """API keys from ``RAG_API_KEYS`` (comma-separated) and ``RAG_API_KEYS_FILE`` (one a line, # comments)."""
    keys = [k.strip() for k in settings.api_keys.split(",") if k.strip()]
    if settings.api_keys_file:
        path = Path(settings.api_keys_file)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise RagError(f"cannot read API key file {path}: {e.strerror or e}; "
                           "check RAG_API_KEYS_FILE") from None
        keys += [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]
    short = [k for k in keys if len(k) < 16]
    if short:
        raise RagError(f"{len(short)} API key(s) are shorter than 16 characters; use long random keys "
                       "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)")
    return tuple(dict.fromkeys(keys))


def parse_networks(spec: str) -> tuple[_Net, ...]:
    """``"127.0.0.1, 10.0.0.0/8"`` -> networks; a bad entry is an error naming it."""
    nets = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        try:
            nets.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise RagError(f"RAG_TRUSTED_PROXIES: {part!r} is not an IP address or network") from None
    return tuple(nets)


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (``localhost``, 127.0.0.0/8, ::1)."""
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


class Authenticator:
    """Turns request headers and the peer address into a ``User`` or an ``AuthError``."""

    def __init__(self, settings: Settings) -> None:
        if settings.auth not in MODES:
            raise RagError(f"RAG_AUTH={settings.auth!r} is not one of {', '.join(MODES)}")
        self.mode = settings.auth
        self.header = settings.user_header.lower()
        self._digests: tuple[bytes, ...] = ()
        self._proxies: tuple[_Net, ...] = ()
        if self.mode == "api-key":
            keys = load_keys(settings)
            if not keys:
                raise RagError("auth mode api-key needs at least one key: "
                               "set RAG_API_KEYS or RAG_API_KEYS_FILE")
            # digests have equal length, so compare_digest's time does not depend on the key
            self._digests = tuple(_digest(k) for k in keys)
        self._proxies = parse_networks(settings.trusted_proxies)
        if self.mode == "trusted-header" and not self._proxies:
            raise RagError("auth mode trusted-header needs RAG_TRUSTED_PROXIES "
                           "(the portal proxy's address)")

    def key_ok(self, key: str) -> bool:
        """Constant-time check of one presented key against every configured key."""
        d = _digest(key)
        ok = False
        for ref in self._digests:  # no early exit: time does not reveal which key matched
            ok |= hmac.compare_digest(d, ref)
        return ok

    def from_proxy(self, peer: str) -> bool:
        try:
            addr = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(addr in net for net in self._proxies)

    def identify(self, headers: Mapping[str, str], peer: str) -> User:
        """The caller of a request. ``headers`` must be case-insensitive (Starlette's are)."""
        if self.mode == "api-key":
            auth = headers.get("authorization", "")
            scheme, _, key = auth.partition(" ")
            if scheme.lower() != "bearer" or not key.strip():
                raise AuthError("missing API key: send 'Authorization: Bearer <key>' / "
                                "API 키가 필요합니다 ('Authorization: Bearer <키>')")
            key = key.strip()
            if not self.key_ok(key):
                raise AuthError("invalid API key / API 키가 올바르지 않습니다")
            return User(id="key:" + hashlib.sha256(key.encode()).hexdigest()[:12])
        if self.mode == "trusted-header":
            name = headers.get(self.header, "").strip()
            if not self.from_proxy(peer):
                raise AuthError("requests must come through the portal's proxy / "
                                "포털 프록시를 통해서만 접속할 수 있습니다")
            if not name or len(name) > 256:
                raise AuthError(f"the proxy sent no {self.header} header / 사용자 헤더가 없습니다")
            return User(id="user:" + name, name=name)
        return User(id="ip:" + client_key(self.client_address(headers, peer)))

    def client_address(self, headers: Mapping[str, str], peer: str) -> str:
        """The client behind a trusted proxy (nearest untrusted ``X-Forwarded-For`` entry), else the peer."""
        if not self.from_proxy(peer):
            return peer
        for hop in reversed([h.strip() for h in headers.get("x-forwarded-for", "").split(",") if h.strip()]):
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                return peer  # a forged or broken list: keep the proxy's own address
            if not self.from_proxy(hop):
                return hop
        return peer


def client_key(address: str) -> str:
    """A client address as a rate-limit key: every loopback address is one client (127.0.0.2 is no
    fresh bucket), an IPv6 client is its /64 (one host holds a whole /64)."""
    try:
        addr = ipaddress.ip_address(address)
    except ValueError:
        return address or "unknown"
    if addr.is_loopback:
        return "loopback"
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped:
            return client_key(str(addr.ipv4_mapped))
        return str(ipaddress.ip_network(f"{addr}/64", strict=False))
    return str(addr)


class RateLimiter:
    """At most ``per_minute`` requests per user in any 60-second window (0 = no limit)."""

    def __init__(self, per_minute: int, window: float = 60.0) -> None:
        self.limit = per_minute
        self.window = window
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, user_id: str) -> float:
        """Record one request; return 0 when allowed, else the seconds to wait."""
        if self.limit <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            q = self._hits.setdefault(user_id, deque())
            while q and now - q[0] >= self.window:
                q.popleft()
            if len(q) >= self.limit:
                return max(0.1, self.window - (now - q[0]))
            q.append(now)
            if len(self._hits) > 10_000:  # forget idle users so memory stays bounded
                for uid in [u for u, d in self._hits.items() if not d or now - d[-1] >= self.window]:
                    del self._hits[uid]
            return 0.0


def rate_limit_message(wait: float) -> str:
    """The 429 message, Korean first then English."""
    s = max(1, math.ceil(wait))
    return f"요청이 너무 많습니다. {s}초 후에 다시 시도하세요. / Too many requests: try again in {s} s."
