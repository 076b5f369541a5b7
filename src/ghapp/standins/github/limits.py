"""The GitHub stand-in's primary rate limits: an hourly budget per installation token
(5000), for the app JWT (5000) and for anonymous callers (60), refilled when the hour is
up. :class:`RateLimits` finds the budget a request spends from, :meth:`Bucket.spend`
answers GitHub's ``403`` once it is used up, and :meth:`Bucket.headers` gives the
``x-ratelimit-*`` headers every response carries.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ghapp.standins.github._utils import RATE_DOCS, Auth, AuthKind, GitHubError


@dataclass
class Bucket:
    limit: int
    remaining: int
    reset: int

    def spend(self, auth: Auth) -> None:
        """Take one request from the budget, or refuse as GitHub does when it is empty."""
        if self.remaining <= 0:
            who = (
                f"installation ID {auth.installation_id}"
                if auth.installation_id is not None
                else "this app"
                if auth.kind == "app-jwt"
                else "127.0.0.1"
            )
            raise GitHubError(
                403, f"API rate limit exceeded for {who}.", documentation_url=RATE_DOCS
            )
        self.remaining -= 1

    def headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(self.remaining),
            "x-ratelimit-reset": str(self.reset),
            "x-ratelimit-used": str(self.limit - self.remaining),
            "x-ratelimit-resource": "core",
        }


class RateLimits:
    """One :class:`Bucket` per installation, one for the app JWT, one for anonymous calls."""

    def __init__(self) -> None:
        self.buckets: dict[str, Bucket] = {}

    def bucket(self, kind: AuthKind, installation_id: int | None) -> Bucket:
        key = self._key(kind, installation_id)
        bucket = self.buckets.get(key)
        now = int(time.time())
        if bucket is None or bucket.reset <= now:  # a new hour, a full budget
            limit = 60 if key == "anonymous" else 5000
            bucket = Bucket(limit, limit, now + 3600)
            self.buckets[key] = bucket
        return bucket

    @staticmethod
    def _key(kind: AuthKind, installation_id: int | None) -> str:
        if kind == "installation-token":
            return f"installation:{installation_id}"
        return "app" if kind == "app-jwt" else "anonymous"
