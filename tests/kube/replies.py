"""Answers the emulator writes itself, with the headers a real API server sends.

kmock renders a reaction's payload into a response with no way to set its
headers per request: every stream goes out as ``application/octet-stream``
(kubectl then fails ``get -w`` with "no stream serializers registered for
application/octet-stream" and retries ``wait`` until it gives up on the
watch), and a ``kmock.Response`` returned from a fallback overwrites that
reaction's own headers for every later request. So a fallback that needs its
own headers raises :class:`Reply`, and the emulator writes it with
:func:`send`: a JSON watch stream (``application/json``, one event per line,
flushed as it happens), a ``text/plain`` log, or a JSON body with ``Warning``
headers.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any

import aiohttp.web
from kmock._internal import rendering

from tests.kube.store import ApiError

#: The first item of a stream that only opens it (headers sent, no event yet).
OPEN = b""


class Reply(Exception):
    """Raised by a fallback reaction to answer with its own response (see the module doc)."""

    def __init__(
        self,
        body: Any = None,
        *,
        status: int = 200,
        content_type: str = "application/json",
        warnings: Sequence[str] = (),
        stream: AsyncGenerator[Any, None] | None = None,
    ) -> None:
        super().__init__(f"reply {status} {content_type}")
        self.body = body
        self.status = status
        self.content_type = content_type
        self.warnings = tuple(warnings)
        self.stream = stream


def warning_header(text: str) -> str:
    """One ``Warning`` header value as the API server writes it (RFC 7234, code 299)."""
    return "299 - " + json.dumps(text)


def _encode(item: Any) -> bytes:
    if isinstance(item, bytes):
        return item
    if isinstance(item, str):
        return item.encode()
    return json.dumps(item, separators=(",", ":")).encode() + b"\n"


def _headers(reply: Reply) -> Mapping[str, str]:
    return {"Content-Type": reply.content_type}


async def send(reply: Reply, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
    """Write ``reply``; a stream's first item comes before the headers (so errors stay 4xx)."""
    if reply.stream is None:
        answer = aiohttp.web.Response(
            body=_encode(reply.body), status=reply.status, headers=_headers(reply)
        )
        for text in reply.warnings:
            answer.headers.add("Warning", warning_header(text))
        return answer
    stream = reply.stream
    try:
        first = await anext(stream)  # an ApiError here is still an ordinary error answer
    except StopAsyncIteration:
        first = OPEN
    except BaseException:
        await stream.aclose()
        raise
    response = aiohttp.web.StreamResponse(status=reply.status, headers=_headers(reply))
    try:
        await response.prepare(raw_request)
        if first != OPEN:
            await response.write(_encode(first))
        async for item in stream:
            await response.write(_encode(item))
        await response.write_eof()
    except ConnectionError:
        pass  # the client went away
    except ApiError as exc:  # e.g. 410 Gone: the stream's last event, as the API server sends it
        await response.write(_encode({"type": "ERROR", "object": exc.as_status()}))
        await response.write_eof()
    except Exception as exc:
        raise rendering.StreamingError(response) from exc
    finally:
        await stream.aclose()
    return response
