"""The Kubernetes API calls the operator makes, with retries, as plain dicts.

An asyncio client on aiohttp (which kopf already brings), logged in with the
same :class:`kopf.ConnectionInfo` that kopf uses, so the operator's own calls
never block the event loop and need no second client library.

Every call is idempotent where the operator relies on it: ``create`` reports a
409 as "already there", ``delete`` and ``get`` report a 404 as "not there".
Conflicts, throttling (429), server errors and lost connections are retried
with exponential backoff; every failed try is counted in the API-errors metric.
The calls are exactly those declared in :mod:`rekindle_operator.resources.permissions`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
import kopf

from rekindle_operator.cluster.operator_metrics import OperatorMetrics

logger = logging.getLogger(__name__)

#: Seconds between tries of a call that failed for a reason worth retrying.
DEFAULT_BACKOFFS: Final = (0.1, 0.3, 1.0, 3.0)
#: HTTP codes worth retrying: conflict, throttled, and the server's own troubles.
RETRYABLE: Final = frozenset({409, 429, 500, 502, 503, 504})
#: One call never waits longer than this for an answer (then it is retried).
REQUEST_TIMEOUT_SECONDS: Final = 30.0

MERGE_PATCH: Final = "application/merge-patch+json"


@dataclass(frozen=True)
class Resource:
    """A namespaced Kubernetes resource type, as addressed in API paths."""

    group: str
    version: str
    plural: str
    #: False for a cluster-scoped resource (nodes): the namespace is then ignored.
    namespaced: bool = True

    def path(self, namespace: str, name: str | None = None, subresource: str | None = None) -> str:
        """The API path of the collection in ``namespace``, or of one object in it."""
        root = f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"
        where = f"/namespaces/{namespace}" if self.namespaced else ""
        path = f"{root}{where}/{self.plural}"
        if name is not None:
            path += f"/{name}"
            if subresource is not None:
                path += f"/{subresource}"
        return path


PODS: Final = Resource("", "v1", "pods")
PERSISTENT_VOLUME_CLAIMS: Final = Resource("", "v1", "persistentvolumeclaims")
SERVICES: Final = Resource("", "v1", "services")
EVENTS: Final = Resource("", "v1", "events")
NODES: Final = Resource("", "v1", "nodes", namespaced=False)
TRAINING_JOBS: Final = Resource("rekindle.dev", "v1alpha1", "trainingjobs")


class ApiError(Exception):
    """A Kubernetes API call failed for good (after retries, or at once if not retryable)."""

    def __init__(self, verb: str, path: str, status: int, message: str) -> None:
        super().__init__(f"{verb} {path}: HTTP {status}: {message}")
        self.verb = verb
        self.path = path
        self.status = status
        #: The API server's own words (the ``message`` of its ``Status`` answer).
        self.message = message


Login = Callable[[], Awaitable[kopf.ConnectionInfo]]


class KubeApi:
    """The operator's Kubernetes client: create, get, list, patch, delete; plain dicts."""

    def __init__(
        self,
        login: Login,
        metrics: OperatorMetrics | None = None,
        backoffs: Sequence[float] = DEFAULT_BACKOFFS,
    ) -> None:
        self._login = login
        self._metrics = metrics
        self._backoffs = tuple(backoffs)
        self._session: aiohttp.ClientSession | None = None
        self._server = ""
        self._lock = asyncio.Lock()

    async def close(self) -> None:
        """Close the HTTP session (at operator clean-up)."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _connect(self, *, renew: bool = False) -> aiohttp.ClientSession:
        """The session, logging in first (or again, after a 401) when needed."""
        async with self._lock:
            if renew and self._session is not None:
                await self._session.close()
                self._session = None
            if self._session is None:
                info = await self._login()
                self._server = info.server.rstrip("/")
                connector = aiohttp.TCPConnector(
                    ssl=info.as_ssl_context() if self._server.startswith("https") else False,
                    limit=64,
                )
                self._session = aiohttp.ClientSession(
                    connector=connector,
                    headers=info.as_http_headers(),
                    timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS),
                )
            return self._session

    async def _request(
        self,
        verb: str,
        resource: Resource,
        path: str,
        *,
        body: Any = None,
        content_type: str = "application/json",
        params: Mapping[str, str] | None = None,
        accept: frozenset[int] = frozenset(),
    ) -> tuple[int, dict[str, Any]]:
        """One call with retries; returns (status, parsed body) for 2xx or an accepted code."""
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if data is not None else {}
        renewed = False
        tries = (*self._backoffs, None)
        for attempt, backoff in enumerate(tries):
            session = await self._connect()
            try:
                async with session.request(
                    verb, self._server + path, data=data, headers=headers, params=params
                ) as response:
                    status = response.status
                    text = await response.text()
            except (aiohttp.ClientError, TimeoutError) as exc:
                status, text = 0, f"{type(exc).__name__}: {exc}"
            if 200 <= status < 300 or status in accept:
                return status, _parse(text)
            self._count_error(verb, resource, status)
            if status == 401 and not renewed:
                renewed = True
                await self._connect(renew=True)
                continue
            if backoff is None or (status != 0 and status not in RETRYABLE):
                raise ApiError(verb, path, status, _message(text))
            logger.warning(
                "Kubernetes API %s %s answered %s (try %d), retrying in %.1fs",
                verb,
                path,
                status or "nothing",
                attempt + 1,
                backoff,
            )
            await asyncio.sleep(backoff)
        raise AssertionError("unreachable: the last try either returns or raises")

    def _count_error(self, verb: str, resource: Resource, status: int) -> None:
        """Count one failed try in the API-errors metric."""
        if self._metrics is not None:
            self._metrics.api_errors.labels(verb.lower(), resource.plural, str(status)).inc()

    async def create(self, resource: Resource, namespace: str, body: Mapping[str, Any]) -> bool:
        """Create ``body``; False when an object of that name already exists (HTTP 409)."""
        path = resource.path(namespace)
        status, _ = await self._request("POST", resource, path, body=body, accept=frozenset({409}))
        return status != 409

    async def get(self, resource: Resource, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        path = resource.path(namespace, name)
        status, body = await self._request("GET", resource, path, accept=frozenset({404}))
        return None if status == 404 else body

    async def list(
        self, resource: Resource, namespace: str, *, field_selector: str | None = None
    ) -> list[dict[str, Any]]:
        """The objects in ``namespace`` (those matching ``field_selector``, if given)."""
        params = {"fieldSelector": field_selector} if field_selector else None
        _, body = await self._request("GET", resource, resource.path(namespace), params=params)
        items = body.get("items")
        return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []

    async def merge_patch(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        patch: Mapping[str, Any],
        *,
        subresource: str | None = None,
    ) -> dict[str, Any] | None:
        """Apply a JSON merge patch; the patched object, or None when it does not exist."""
        path = resource.path(namespace, name, subresource)
        status, body = await self._request(
            "PATCH", resource, path, body=patch, content_type=MERGE_PATCH, accept=frozenset({404})
        )
        return None if status == 404 else body

    async def delete(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        *,
        grace_period_seconds: int | None = None,
        propagation: str | None = None,
    ) -> bool:
        """Delete the object; False when it was already gone."""
        options: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if propagation is not None:
            options["propagationPolicy"] = propagation
        path = resource.path(namespace, name)
        status, _ = await self._request(
            "DELETE", resource, path, body=options, accept=frozenset({404})
        )
        return status != 404


def _parse(text: str) -> dict[str, Any]:
    """The JSON object in a response, or an empty dict for an empty or non-object body."""
    if not text:
        return {}
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _message(text: str) -> str:
    """The ``message`` of a Kubernetes Status answer, else the text itself (shortened)."""
    message = _parse(text).get("message")
    return str(message) if message else text[:300]
