"""The app's own endpoints, authenticated with the app JWT (``/app``, its installations,
installation tokens, a repository's installation) or with nothing at all (the manifest
flow's ``POST /app-manifests/{code}/conversions``), and the installation-token endpoint
that lists an installation's repositories.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ghapp.standins.github._utils import (
    APP_EVENTS,
    TOKEN_PERMISSIONS,
    Call,
    Reply,
    iso,
    not_found,
    now,
)
from ghapp.standins.github.auth import Credentials
from ghapp.standins.github.render import Renderer
from ghapp.standins.github.world import World

MANIFEST_CODE_LIFETIME = 3600  # a manifest flow's code converts once, within the hour


class AppRoutes:
    world: World
    render: Renderer
    credentials: Credentials
    app_id: int
    app_slug: str
    client_id: str
    web_url: str
    created_apps: list[dict[str, Any]]

    def _get_app(self, call: Call) -> Reply:
        return Reply(
            200,
            {
                "id": self.app_id,
                "slug": self.app_slug,
                "client_id": self.client_id,
                "node_id": f"A_{self.app_id}",
                "name": self.app_slug,
                "owner": self.render.user("ghapp-owner", "Organization"),
                "description": "",
                "external_url": self.web_url,
                "html_url": f"{self.web_url}/apps/{self.app_slug}",
                "created_at": "2024-01-01T00:00:00Z",
                "updated_at": "2024-01-01T00:00:00Z",
                "permissions": dict(TOKEN_PERMISSIONS),
                "events": APP_EVENTS,
                "installations_count": len(self.world.installations),
            },
        )

    def _convert_manifest(self, call: Call) -> Reply:
        """``POST /app-manifests/{code}/conversions``: the new app with its secrets and a
        fresh private key (PKCS#1 PEM, as GitHub sends it); 404 if the code is unknown,
        used or older than an hour."""
        entry = self.world.manifest_codes.pop(call.params["code"], None)
        if entry is None or time.time() - entry.issued_at > MANIFEST_CODE_LIFETIME:
            raise not_found()
        manifest = entry.manifest
        app_id = self.world.next_id()
        name = str(manifest.get("name") or f"app-{app_id}")
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or f"app-{app_id}"
        moment = iso(now())
        created = {
            "id": app_id,
            "slug": slug,
            "node_id": f"A_{app_id}",
            "owner": self.render.user(entry.owner, entry.owner_type),
            "name": name,
            "description": manifest.get("description") or "",
            "external_url": manifest.get("url") or "",
            "html_url": f"{self.web_url}/apps/{slug}",
            "created_at": moment,
            "updated_at": moment,
            "permissions": {"metadata": "read", **(manifest.get("default_permissions") or {})},
            "events": list(manifest.get("default_events") or []),
            "installations_count": 0,
            "client_id": f"Iv1.{secrets.token_hex(8)}",
            "client_secret": secrets.token_hex(20),
            "webhook_secret": secrets.token_hex(20),
            "pem": _new_pkcs1_pem(),
        }
        self.created_apps.append(created)
        return Reply(201, created)

    def _list_installations(self, call: Call) -> Reply:
        objs = [self.render.installation(i) for i in self.world.installations.values()]
        page, headers = self.render.page(call, objs)
        return Reply(200, page, headers)

    def _get_installation(self, call: Call) -> Reply:
        record = self.world.installations.get(int(call.params["id"]))
        if record is None:
            raise not_found()
        return Reply(200, self.render.installation(record))

    def _create_token(self, call: Call) -> Reply:
        """``POST /app/installations/{id}/access_tokens``: an hour-long ``ghs_`` token."""
        installation_id = int(call.params["id"])
        if installation_id not in self.world.installations:
            raise not_found()
        return Reply(201, self.credentials.issue_token(installation_id))

    def _repo_installation(self, call: Call) -> Reply:
        assert call.repo is not None
        record = self.world.installations[call.repo["installation_id"]]
        return Reply(200, self.render.installation(record))

    def _installation_repos(self, call: Call) -> Reply:
        repos = [
            self.render.repo(r)
            for r in self.world.repos.values()
            if r["installation_id"] == call.auth.installation_id
        ]
        page, headers = self.render.page(call, repos)
        return Reply(
            200,
            {"total_count": len(repos), "repository_selection": "all", "repositories": page},
            headers,
        )


def _new_pkcs1_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
