"""The API server's checks on object metadata that the operator could get wrong.

Pure functions returning an error message (or None): names must be DNS-1123
subdomains, label keys and values at most 63 characters of the allowed
alphabet. A real cluster rejects such objects with 422; so does the emulator,
so that a bad name fails in tests, not in production.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def name_error(name: object) -> str | None:
    """Why ``name`` is not a valid object name, or None."""
    if not isinstance(name, str) or not name:
        return "metadata.name: Required value: name or generateName is required"
    if len(name) > 253 or not _SUBDOMAIN.match(name):
        return (
            f"metadata.name: Invalid value: {name!r}: a lowercase RFC 1123 subdomain must "
            "consist of lower case alphanumeric characters, '-' or '.', and must start and "
            "end with an alphanumeric character (at most 253 characters)"
        )
    return None


def label_errors(labels: object) -> list[str]:
    """Why each invalid label key or value in ``labels`` is invalid."""
    if labels is None:
        return []
    if not isinstance(labels, Mapping):
        return ["metadata.labels: Invalid value: must be a map of strings"]
    errors: list[str] = []
    for key, value in labels.items():
        prefix, _, name = key.rpartition("/") if "/" in key else ("", "", key)
        if prefix and (len(prefix) > 253 or not _SUBDOMAIN.match(prefix)):
            errors.append(
                f"metadata.labels: Invalid value: {key!r}: prefix must be a DNS subdomain"
            )
        if len(name) > 63 or not _LABEL_NAME.match(name):
            errors.append(
                f"metadata.labels: Invalid value: {key!r}: name part must be at most 63 "
                "characters of [A-Za-z0-9_.-], starting and ending with an alphanumeric"
            )
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            errors.append(
                f"metadata.labels: Invalid value: {value!r}: a label value must be a string of "
                "at most 63 characters of [A-Za-z0-9_.-], starting and ending with an alphanumeric"
            )
    return errors


def metadata_errors(metadata: Mapping[str, Any]) -> list[str]:
    """Every reason the metadata of a new or updated object is invalid."""
    errors: list[str] = []
    if (error := name_error(metadata.get("name"))) is not None:
        errors.append(error)
    errors.extend(label_errors(metadata.get("labels")))
    annotations = metadata.get("annotations")
    if annotations is not None and (
        not isinstance(annotations, Mapping)
        or not all(isinstance(v, str) for v in annotations.values())
    ):
        errors.append("metadata.annotations: Invalid value: must be a map of strings to strings")
    return errors
