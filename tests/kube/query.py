"""Query parameters that take one of a few values, read as the API server reads them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tests.kube.store import ApiError


def choice(params: Mapping[str, str], name: str, choices: Sequence[str], default: str) -> str:
    """``params[name]`` (``default`` when absent or empty); 400 naming the choices otherwise."""
    value = params.get(name) or default
    if value not in choices:
        raise ApiError(
            400,
            "BadRequest",
            f"{name}: Unsupported value: {value!r}: supported values: "
            + ", ".join(f'"{c}"' for c in choices),
        )
    return value
