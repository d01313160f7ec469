"""HTTP sessions for adapters: keep-alive, and proxies read from the environment once."""

from __future__ import annotations

import requests


def http_session(url: str) -> requests.Session:
    """A session for calls to ``url``.

    requests looks up proxy variables in the environment on every call, which costs
    more than a loopback round trip; the proxies for ``url`` are resolved here, once.
    """
    session = requests.Session()
    session.proxies = requests.utils.get_environ_proxies(url)
    session.trust_env = False
    return session
