"""Server-side field validation: ``?fieldValidation=Strict|Warn|Ignore`` on writes.

kubectl 1.32 validates on the server when the OpenAPI v3 document offers the
``fieldValidation`` parameter (see :mod:`tests.kube.openapi`): it sends
``fieldValidation=Strict`` and expects a 400 naming each unknown field
(``strict decoding error: unknown field "spec.foo"``), where a client with no
parameter gets the default, ``Warn``: the write succeeds, the unknown fields
are dropped, and each comes back as a ``Warning`` header
(``unknown field "spec.foo"``) that kubectl prints.

:func:`unknown_fields` walks a body against the kind's OpenAPI schema
(references resolved in ``definitions``): a field is unknown where an object
schema lists its ``properties`` and neither ``additionalProperties`` nor
``x-kubernetes-preserve-unknown-fields`` admits others. Keys that begin with
``$`` are strategic-merge-patch directives, not fields.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tests.kube import query
from tests.kube.core_schemas import REF_PREFIX
from tests.kube.store import ApiError

DIRECTIVES = ("Strict", "Warn", "Ignore")


def directive(params: Mapping[str, str]) -> str:
    """The request's ``fieldValidation`` (``Warn`` when absent); 400 for another value."""
    return query.choice(params, "fieldValidation", DIRECTIVES, "Warn")


def resolve(schema: Mapping[str, Any], definitions: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follow ``$ref`` and single-``allOf`` wrappers to the schema they stand for."""
    seen = 0
    while seen < 32:
        seen += 1
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith(REF_PREFIX):
            schema = definitions.get(ref[len(REF_PREFIX) :]) or {}
            continue
        all_of = schema.get("allOf")
        if isinstance(all_of, list) and len(all_of) == 1 and not schema.get("properties"):
            schema = all_of[0]
            continue
        break
    return schema


def _path(parent: str, key: str) -> str:
    return f"{parent}.{key}" if parent else key


def unknown_fields(
    value: Any, schema: Mapping[str, Any], definitions: Mapping[str, Any], path: str = ""
) -> Iterator[str]:
    """Dotted paths (``spec.containers[0].foo``) of the fields ``schema`` does not declare."""
    schema = resolve(schema, definitions)
    if isinstance(value, Mapping):
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
        for key, item in value.items():
            if str(key).startswith("$"):
                continue
            if isinstance(properties, Mapping) and key in properties:
                yield from unknown_fields(item, properties[key], definitions, _path(path, key))
            elif isinstance(extra, Mapping):
                yield from unknown_fields(item, extra, definitions, _path(path, key))
            elif isinstance(properties, Mapping) and not preserve and extra is not True:
                yield _path(path, key)
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for index, item in enumerate(value):
            yield from unknown_fields(item, schema["items"], definitions, f"{path}[{index}]")


def check(mode: str, kind: str, version: str, unknown: list[str]) -> list[str]:
    """The warnings to send (``Warn``), or a 400 (``Strict``) when fields are unknown."""
    if not unknown or mode == "Ignore":
        return []
    messages = [f'unknown field "{field}"' for field in unknown]
    if mode == "Strict":
        raise ApiError(
            400,
            "BadRequest",
            f'{kind} in version "{version}" cannot be handled as a {kind}: '
            f"strict decoding error: {', '.join(messages)}",
        )
    return messages
