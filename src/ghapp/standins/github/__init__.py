"""A GitHub stand-in: a real HTTP server on loopback that answers like GitHub's REST API v3.

Tests and the offline demo point ``GHAPP_GITHUB_API_URL`` at it, exactly as a GitHub
Enterprise user points ghapp at ``https://HOST/api/v3``, so the code under test runs its
real HTTP stack (gidgethub, httpx, the retry transport) without reaching github.com.

What it mimics, and why:

* **Authentication as GitHub checks it.** App JWTs (RS256, ``iss`` = the app id, at most
  ten minutes between ``iat`` and ``exp``, ``iat`` at most 60 s in the future) are accepted
  only on the app endpoints; installation tokens (``ghs_…``, one hour) only on repository
  endpoints of *their* installation. Wrong credentials get GitHub's messages, so code that
  recognises "Bad credentials" (refresh the token) can be tested.
* **Rate limits.** Every response carries the ``x-ratelimit-*`` headers, counted per
  installation (5000 an hour), per app JWT (5000) and for anonymous callers (60); an
  exhausted bucket answers GitHub's primary-limit ``403``.
* **Faults on demand.** :meth:`GitHubStandIn.inject` replaces the next matching responses
  (502s, ``429 Retry-After``, secondary-limit ``403``…) to exercise retries.
* **Webhook deliveries.** It sends deliveries to the app's webhook URL signed as GitHub
  signs them, keeps each attempt and its answer, lists them (``GET /app/hook/deliveries``)
  and redelivers one on request with the same ``X-GitHub-Delivery`` (:mod:`.routes.hooks`).
* **Recording.** Every request is kept in :attr:`GitHubStandIn.requests` (a
  :class:`Recorded`), with how it authenticated and what it was answered.

The state is in memory and guarded by one lock, so helpers may be called from test code
while :meth:`GitHubStandIn.serve_in_thread` serves from another thread.

Where things are: :mod:`.server` (the stand-in, serving, request handling, faults),
:mod:`.helpers` (set-up and inspection for tests), :mod:`.world` (the state),
:mod:`.render` (GitHub's JSON), :mod:`.auth` (JWTs and installation tokens),
:mod:`.limits` (rate limits), :mod:`.routes` (the endpoints, a module per API area),
:mod:`.search` (the issue search query language) and :mod:`._utils` (what they share).
"""

from ghapp.standins.github.server import GitHubStandIn, Recorded

__all__ = ["GitHubStandIn", "Recorded"]
