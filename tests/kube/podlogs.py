"""The ``pods/NAME/log`` subresource's rules, apart from where the text comes from.

The API server reads ``PodLogOptions`` from the query (``container``,
``tailLines``, ``previous``…), picks the container (a pod with several needs
``container``), asks the node for that container's output, and cuts the tail.
This module holds those rules as pure functions; the emulator asks the process
kubelet for the text (:class:`LogSource`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from tests.kube.store import ApiError

#: Query parameters a real API server takes on pods/log that the emulator does not emulate.
UNSUPPORTED = ("sinceSeconds", "sinceTime", "limitBytes")
#: Boolean parameters whose ``true`` asks for a behaviour the emulator does not emulate.
UNSUPPORTED_FLAGS = ("timestamps",)
#: What Go's strconv.ParseBool accepts (the API server parses booleans with it).
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}
_LINE = re.compile(r"[^\n]*\n|[^\n]+$")


class LogUnavailable(Exception):
    """The node has no such log (not started yet, no previous instance kept): a 400."""


class LogSource(Protocol):
    """Who holds the containers' output: the process kubelet (called on the server's loop)."""

    def container_log(self, namespace: str, name: str, *, previous: bool = False) -> str:
        """The output of the pod's container (``previous``: its last terminated instance).

        Raises:
            LogUnavailable: with the message the API answers with.
        """
        ...


@dataclass(frozen=True)
class LogOptions:
    """The ``PodLogOptions`` of one request, as the API server reads them."""

    container: str
    previous: bool
    tail_lines: int | None
    #: Stream the output as it is written until the container ends (``kubectl logs -f``).
    follow: bool = False


def parse_bool(field: str, text: str) -> bool:
    """A query boolean as the API server reads it (``true``, ``1``, ``False``…).

    Raises:
        ApiError: 400 naming the parameter and what it takes.
    """
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ApiError(400, "BadRequest", f"{field}: invalid value {text!r}: use true or false")


def parse_tail_lines(text: str | None) -> int | None:
    """``tailLines``: None for the whole log, else a count of lines (0 or more).

    Raises:
        ApiError: 400 for a non-integer, 422 for a negative count (as the API server).
    """
    if text is None or text == "":
        return None
    try:
        count = int(text)
    except ValueError:
        raise ApiError(
            400, "BadRequest", f"tailLines: invalid value {text!r}: use a whole number of lines"
        ) from None
    if count < 0:
        raise ApiError(
            422,
            "Invalid",
            f"PodLogOptions is invalid: tailLines: Invalid value: {count}: "
            "must be greater than or equal to 0",
        )
    return count


def container_names(pod: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The pod's container names, and the names of its init and ephemeral containers."""
    spec = pod.get("spec") or {}
    main = [str(c.get("name")) for c in spec.get("containers") or []]
    other = [
        str(c.get("name"))
        for key in ("initContainers", "ephemeralContainers")
        for c in spec.get(key) or []
    ]
    return main, other


def choose_container(pod: Mapping[str, Any], requested: str) -> str:
    """The container whose log is asked for (``requested``, or the pod's only one).

    Raises:
        ApiError: 400 when the pod has several containers and none is named, or
            the named one is not in the pod (the messages the API server gives).
    """
    name = pod["metadata"]["name"]
    main, other = container_names(pod)
    if not requested:
        if len(main) == 1:
            return main[0]
        raise ApiError(
            400,
            "BadRequest",
            f"a container name must be specified for pod {name}, choose one of: [{' '.join(main)}]",
        )
    if requested not in main and requested not in other:
        raise ApiError(400, "BadRequest", f"container {requested} is not valid for pod {name}")
    return requested


def parse_options(pod: Mapping[str, Any], params: Mapping[str, str]) -> LogOptions:
    """The request's ``PodLogOptions`` against ``pod``.

    Raises:
        ApiError: 400/422 for a bad value, 400 for an option the emulator does not serve.
    """
    for field in UNSUPPORTED:
        if params.get(field):
            raise ApiError(400, "BadRequest", f"{field} on pods/log is not emulated; leave it out")
    for field in UNSUPPORTED_FLAGS:
        if params.get(field) and parse_bool(field, params[field]):
            raise ApiError(
                400, "BadRequest", f"{field}=true on pods/log is not emulated; leave it out"
            )
    previous = parse_bool("previous", params["previous"]) if params.get("previous") else False
    follow = parse_bool("follow", params["follow"]) if params.get("follow") else False
    return LogOptions(
        container=choose_container(pod, params.get("container", "")),
        previous=previous,
        tail_lines=parse_tail_lines(params.get("tailLines")),
        follow=follow,
    )


def container_ended(pod: Mapping[str, Any] | None, restarts: int) -> bool:
    """Whether the followed container instance is over (gone, terminated, or restarted)."""
    if pod is None:
        return True
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    if not statuses:
        return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
    first = statuses[0]
    return (
        bool((first.get("state") or {}).get("terminated"))
        or int(first.get("restartCount") or 0) != restarts
    )


def restart_count(pod: Mapping[str, Any]) -> int:
    """The first container's restart count (0 when no status yet)."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return int(statuses[0].get("restartCount") or 0) if statuses else 0


def tail(text: str, lines: int | None) -> str:
    """The last ``lines`` lines of ``text`` (all of it for None); a last partial line counts."""
    if lines is None:
        return text
    if lines == 0:
        return ""
    # Lines end at "\n" only, as the kubelet counts them (not at "\r" or form feeds).
    return "".join(_LINE.findall(text)[-lines:])
