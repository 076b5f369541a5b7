"""The app's webhook deliveries, as GitHub keeps them: the stand-in sends deliveries to the
app's webhook URL itself, signed as GitHub signs them, records each attempt and its answer,
and serves the three endpoints GitHub offers to recover failed ones (app JWT):

* ``GET /app/hook/deliveries``: newest first, ``per_page`` (at most 100), a ``cursor`` in
  the ``Link`` header's ``next`` (``v1_`` and the id the next page starts at), and
  GitHub's ``status`` filter (``success``: 200-399, ``failure``: 400-599);
* ``GET /app/hook/deliveries/{delivery_id}``: one attempt, with its request and response;
* ``POST /app/hook/deliveries/{delivery_id}/attempts``: ``202`` at once, then the same
  payload is sent again with the same ``X-GitHub-Delivery`` GUID, signed with the secret
  the hook has now, and recorded as a new attempt with ``redelivery: true``.

Tests send as GitHub would with :meth:`HookRoutes.deliver` (after :meth:`set_webhook`),
or write down an attempt that was never sent with :meth:`add_hook_delivery`; a
redelivery's sending runs in the stand-in's loop, and :meth:`hook_sends_settled` waits for
those under way.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import json
import re
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import httpx

from ghapp.signing import signature
from ghapp.standins.github._utils import Call, GitHubError, Reply, not_found, now, page_params
from ghapp.standins.github.render import Renderer
from ghapp.standins.github.world import World

HOOK_TIMEOUT_S = 10.0  # GitHub gives up on a delivery after ten seconds
_CURSOR = re.compile(r"v1_(\d+)")
_STATUS_RANGES = {"success": (200, 399), "failure": (400, 599)}


class HookRoutes:
    world: World
    render: Renderer
    app_id: int
    _lock: threading.RLock
    _hook_sends: set[asyncio.Task[Any]]

    # == the endpoints ==================================================================

    def _list_hook_deliveries(self, call: Call) -> Reply:
        per_page, _ = page_params(call)
        records = sorted(self.world.hooks.deliveries.values(), key=lambda r: -r["id"])
        status = call.query.get("status")
        if status is not None:
            if status not in _STATUS_RANGES:
                raise GitHubError(400, "Bad Request")
            low, high = _STATUS_RANGES[status]
            records = [r for r in records if low <= r["status_code"] <= high]
        cursor = call.query.get("cursor")
        if cursor is not None:
            match = _CURSOR.fullmatch(cursor)
            if match is None:
                raise GitHubError(400, "Bad Request")
            records = [r for r in records if r["id"] <= int(match.group(1))]
        page, rest = records[:per_page], records[per_page:]
        headers: dict[str, str] = {}
        if rest:
            params = [(k, v) for k, v in call.query_items if k != "cursor"]
            params.append(("cursor", f"v1_{rest[0]['id']}"))
            origin = self.render.api
            if self.render.path_prefix:
                origin = origin.removesuffix(self.render.path_prefix)
            headers["link"] = f'<{origin}{call.path}?{urlencode(params)}>; rel="next"'
        return Reply(200, [self.render.hook_delivery_item(r) for r in page], headers)

    def _get_hook_delivery(self, call: Call) -> Reply:
        return Reply(200, self.render.hook_delivery(self._hook_record(call)))

    def _redeliver_hook_delivery(self, call: Call) -> Reply:
        """Queued, as on GitHub: the redelivery is made after the answer."""
        record = self._hook_record(call)
        hooks = self.world.hooks
        send = self._send_hook(
            hooks.url,
            hooks.secret or "",
            record["event"],
            record["guid"],
            record["body"],
            redelivery=True,
        )
        task = asyncio.get_running_loop().create_task(send)
        pending = self._pending_hook_sends()
        pending.add(task)
        task.add_done_callback(pending.discard)
        return Reply(202, {})

    def _hook_record(self, call: Call) -> dict[str, Any]:
        record = self.world.hooks.deliveries.get(int(call.params["delivery_id"]))
        if record is None:
            raise not_found()
        return record

    # == helpers for tests ==============================================================

    def set_webhook(self, url: str, secret: str) -> None:
        """The app's webhook: where deliveries are sent, and the secret that signs them."""
        with self._lock:
            self.world.hooks.url = url
            self.world.hooks.secret = secret

    async def deliver(
        self, event: str, payload: dict[str, Any], *, guid: str | None = None
    ) -> dict[str, Any]:
        """Send ``payload`` to the app's webhook as GitHub does, record the attempt and
        return it as the listing shows it."""
        with self._lock:
            url, secret = self.world.hooks.url, self.world.hooks.secret
        if url is None or secret is None:
            raise RuntimeError("no webhook: set_webhook(url, secret) first")
        body = json.dumps(payload).encode()
        guid = guid or str(uuid.uuid4())
        record = await self._send_hook(url, secret, event, guid, body, redelivery=False)
        return self.render.hook_delivery_item(record)

    def add_hook_delivery(
        self,
        event: str,
        payload: dict[str, Any],
        *,
        status_code: int,
        guid: str | None = None,
        delivered_at: datetime | None = None,
        redelivery: bool = False,
    ) -> dict[str, Any]:
        """Write down an attempt as if it had been made and answered ``status_code``
        (0: no answer), without sending anything."""
        record = self._hook_attempt(
            event,
            guid or str(uuid.uuid4()),
            json.dumps(payload).encode(),
            redelivery=redelivery,
            headers={},
        )
        record.update(_outcome(status_code, {}, "", 0.01))
        if delivered_at is not None:
            record["delivered_at"] = delivered_at.replace(microsecond=0)
        with self._lock:
            self.world.hooks.deliveries[record["id"]] = record
            return self.render.hook_delivery_item(record)

    def hook_deliveries(self, guid: str | None = None) -> list[dict[str, Any]]:
        """Every attempt (of one GUID, if given), newest first, as the listing shows them."""
        with self._lock:
            records = sorted(self.world.hooks.deliveries.values(), key=lambda r: -r["id"])
            return [
                self.render.hook_delivery_item(r)
                for r in records
                if guid is None or r["guid"] == guid
            ]

    async def hook_delivery_made(self, done: Callable[[list[dict[str, Any]]], bool]) -> None:
        """Return once ``done`` holds of :meth:`hook_deliveries`, re-checked after each
        attempt the stand-in sends (call it in the loop that serves the stand-in)."""
        made = self._hook_made()
        while not done(self.hook_deliveries()):
            made.clear()
            await made.wait()

    async def hook_sends_settled(self) -> None:
        """Return once every redelivery under way has been made and recorded."""
        while pending := self._pending_hook_sends():
            await asyncio.gather(*list(pending))

    # == sending ========================================================================

    def _pending_hook_sends(self) -> set[asyncio.Task[Any]]:
        pending: set[asyncio.Task[Any]] | None = self.__dict__.get("_hook_sends")
        if pending is None:
            pending = self._hook_sends = set()
        return pending

    def _hook_made(self) -> asyncio.Event:
        made: asyncio.Event | None = self.__dict__.get("_hook_made_event")
        if made is None:
            made = self.__dict__["_hook_made_event"] = asyncio.Event()
        return made

    def _hook_attempt(
        self, event: str, guid: str, body: bytes, *, redelivery: bool, headers: dict[str, str]
    ) -> dict[str, Any]:
        payload = json.loads(body)
        installation = payload.get("installation") or {}
        repository = payload.get("repository") or {}
        with self._lock:
            url = self.world.hooks.url
            delivery_id = next(self.world.hooks.ids)
        return {
            "id": delivery_id,
            "guid": guid,
            "delivered_at": now(),
            "redelivery": redelivery,
            "event": event,
            "action": payload.get("action"),
            "installation_id": installation.get("id"),
            "repository_id": repository.get("id"),
            "url": url,
            "body": body,
            "payload": payload,
            "request_headers": headers,
        }

    async def _send_hook(
        self, url: str | None, secret: str, event: str, guid: str, body: bytes, *, redelivery: bool
    ) -> dict[str, Any]:
        with self._lock:
            hook_id = self.world.hooks.hook_id
        headers = {
            "Accept": "*/*",
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/standin",
            "X-GitHub-Delivery": guid,
            "X-GitHub-Event": event,
            "X-GitHub-Hook-ID": str(hook_id),
            "X-GitHub-Hook-Installation-Target-ID": str(self.app_id),
            "X-GitHub-Hook-Installation-Target-Type": "integration",
            "X-Hub-Signature": "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest(),
            "X-Hub-Signature-256": signature(body, secret),
        }
        record = self._hook_attempt(event, guid, body, redelivery=redelivery, headers=headers)
        started = time.monotonic()
        if url is None:
            record.update(_outcome(0, {}, "", 0.0, "No URL configured"))
        else:
            try:
                # One TLS context for every send (building one costs ~60 ms); no proxy from
                # the environment: GitHub reaches the hook directly.
                async with httpx.AsyncClient(
                    timeout=HOOK_TIMEOUT_S, verify=_tls(), trust_env=False
                ) as http:
                    answer = await http.post(url, content=body, headers=headers)
                record.update(
                    _outcome(
                        answer.status_code,
                        dict(answer.headers),
                        answer.text,
                        time.monotonic() - started,
                    )
                )
            except httpx.TimeoutException:
                record.update(_outcome(0, {}, "", time.monotonic() - started, "timed out"))
            except httpx.HTTPError:
                elapsed = time.monotonic() - started
                record.update(_outcome(0, {}, "", elapsed, "failed to connect to host"))
        with self._lock:
            self.world.hooks.deliveries[record["id"]] = record
        self._hook_made().set()
        return record


@functools.cache
def _tls() -> ssl.SSLContext:
    return ssl.create_default_context()


def _outcome(
    status_code: int,
    headers: dict[str, str],
    text: str,
    duration: float,
    failure: str | None = None,
) -> dict[str, Any]:
    """How an attempt went, in GitHub's words (``OK``, ``Invalid HTTP Response: 503``)."""
    if failure is not None:
        status = failure
    elif 200 <= status_code < 300:
        status = "OK"
    else:
        status = f"Invalid HTTP Response: {status_code}"
    return {
        "status_code": status_code,
        "status": status,
        "duration": round(duration, 2),
        "response_headers": headers,
        "response_body": text,
    }
