"""Outbound proxies for GitHub calls, as the environment names them.

httpx honours ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``NO_PROXY`` only when it builds a
client's transport itself; ghapp hands its clients a transport (the retrying one, see
:mod:`ghapp.github.transport`), which turns that off. Behind a corporate proxy, the usual
place for a GitHub Enterprise Server, every API call would then go direct and fail. This
transport restores the convention: per request, the proxy of the URL's scheme unless
``NO_PROXY`` lists the host. (Clones and the Claude Code CLI read the same variables.)
"""

from __future__ import annotations

import urllib.request

import httpx


class EnvironmentProxies(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        proxies = urllib.request.getproxies_environment()
        self.direct = httpx.AsyncHTTPTransport()
        self.via = {
            scheme: httpx.AsyncHTTPTransport(proxy=proxies[scheme])
            for scheme in ("http", "https")
            if proxies.get(scheme)
        }

    def route(self, url: httpx.URL) -> httpx.AsyncHTTPTransport:
        proxy = self.via.get(url.scheme)
        if proxy is None or urllib.request.proxy_bypass(url.host):
            return self.direct
        return proxy

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.route(request.url).handle_async_request(request)

    async def aclose(self) -> None:
        for transport in (self.direct, *self.via.values()):
            await transport.aclose()
