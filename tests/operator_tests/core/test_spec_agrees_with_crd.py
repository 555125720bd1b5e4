"""The typed spec and status declare exactly what the CRD declares: names, defaults, bounds.

The trainer configuration document is declared by the same dataclasses as the
spec's ``training``, ``checkpoint`` (save policy) and ``earlyStopping``; it is
compared with the CRD too, through the part of the spec it is projected from.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import types
import typing
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rekindle_operator.core import job_spec, job_status
from rekindle_operator.resources import crd, validation
from rekindle_trainer.contract import documents, training_config

SCHEMA = crd.version_schema(crd.load_crd())
# Compile the CEL rules outside the property test (celpy changes the recursion limit once).
validation.prepare()
SCALARS = {int: "integer", float: "number", bool: "boolean", str: "string"}


def _unwrap(tp: Any) -> tuple[Any, bool]:
    """``(T, optional)`` for ``T | None``."""
    if typing.get_origin(tp) in (types.UnionType, typing.Union):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return inner[0], True
    return tp, False


def _default_of(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def _crd_default(node: Mapping[str, Any]) -> Any:
    """The node's default as the API server stores it: nested defaults applied."""
    value = copy.deepcopy(node["default"])
    validation._default(value, node)
    return value


def _compare(cls: type, node: Mapping[str, Any], path: str, *, defaults: bool = True) -> list[str]:
    """Every difference between dataclass ``cls`` and the object schema ``node``.

    ``defaults=False`` for the status, which the API server never defaults.
    """
    problems: list[str] = []
    fields = documents.json_fields(cls)
    declared = {f.metadata["json"] for f, _ in fields}
    props = node.get("properties", {})
    if declared != set(props):
        problems.append(f"{path}: typed {sorted(declared)} != CRD {sorted(props)}")
    required = set(node.get("required", []))
    for f, tp in fields:
        name = f.metadata["json"]
        where = f"{path}.{name}"
        if name not in props:
            continue
        sub = props[name]
        meta = f.metadata
        if meta["required"] != (name in required):
            problems.append(f"{where}: required typed={meta['required']} CRD={name in required}")
        default = _default_of(f)
        has_typed_default = default is not dataclasses.MISSING and default is not None
        if not defaults:
            if "default" in sub:
                problems.append(f"{where}: the CRD defaults a status field")
        elif meta["schema_default"] and has_typed_default:
            if "default" not in sub:
                problems.append(f"{where}: typed default {default!r}, CRD none")
            elif _drop_none(documents.unparse(default)) != _crd_default(sub):
                problems.append(f"{where}: default typed={default!r} CRD={_crd_default(sub)!r}")
        elif "default" in sub:
            problems.append(f"{where}: CRD default {sub['default']!r}, typed none")
        for bound in ("minimum", "maximum"):
            if meta[bound] != sub.get(bound):
                problems.append(f"{where}: {bound} typed={meta[bound]} CRD={sub.get(bound)}")
        problems += _compare_type(tp, sub, where, meta, defaults)
    return problems


def _compare_type(
    tp: Any, sub: Mapping[str, Any], where: str, meta: Mapping[str, Any], defaults: bool
) -> list[str]:
    tp, _ = _unwrap(tp)
    problems: list[str] = []
    origin = typing.get_origin(tp)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if sub.get("type") != "object":
            problems.append(f"{where}: CRD type {sub.get('type')}, typed object")
        return problems + _compare(tp, sub, where, defaults=defaults)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        if sub.get("enum") != [m.value for m in tp]:
            problems.append(f"{where}: enum typed={[m.value for m in tp]} CRD={sub.get('enum')}")
        return problems
    if origin is tuple:
        if sub.get("type") != "array":
            problems.append(f"{where}: CRD type {sub.get('type')}, typed list")
        return problems
    if origin is dict:
        value_type = typing.get_args(tp)[1]
        if sub.get("type") != "object":
            problems.append(f"{where}: CRD type {sub.get('type')}, typed map")
        extra = sub.get("additionalProperties")
        if value_type is Any:
            ok = sub.get("x-kubernetes-preserve-unknown-fields") or (
                isinstance(extra, Mapping) and extra.get("x-kubernetes-int-or-string")
            )
            if not ok:
                problems.append(f"{where}: typed free-form map, CRD closed")
        elif not isinstance(extra, Mapping) or extra.get("type") != SCALARS[value_type]:
            problems.append(f"{where}: typed map of {value_type.__name__}, CRD {extra}")
        return problems
    if tp is datetime:
        if (sub.get("type"), sub.get("format")) != ("string", "date-time"):
            problems.append(f"{where}: typed timestamp, CRD {sub.get('type')}/{sub.get('format')}")
        return problems
    if sub.get("type") != SCALARS[tp]:
        problems.append(f"{where}: typed {SCALARS[tp]}, CRD {sub.get('type')}")
    pattern = meta.get("pattern")
    if pattern is not None:
        if "enum" in sub:
            if set(pattern.split("|")) != set(sub["enum"]):
                problems.append(f"{where}: typed {pattern} CRD enum {sub['enum']}")
        elif sub.get("pattern") not in (f"^{pattern}$",) and not (
            pattern == ".+" and sub.get("minLength") == 1
        ):
            problems.append(f"{where}: pattern typed=^{pattern}$ CRD={sub.get('pattern')}")
    elif "pattern" in sub:
        problems.append(f"{where}: CRD pattern {sub['pattern']}, typed none")
    return problems


def test_the_typed_spec_matches_the_crd_field_by_field() -> None:
    assert _compare(job_spec.TrainingJobSpec, SCHEMA["properties"]["spec"], "spec") == []


def test_the_typed_status_matches_the_crd_field_by_field() -> None:
    assert (
        _compare(job_status.Status, SCHEMA["properties"]["status"], "status", defaults=False) == []
    )


def _json_names(cls: type) -> set[str]:
    return {f.metadata["json"] for f, _ in documents.json_fields(cls)}


def _trainer_document_schema(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The CRD's declaration of the trainer configuration document.

    ``spec.training``'s properties at the top level; each other field of the
    document from the spec's field of the same name, ``checkpoint`` without the
    fields that only the operator's :class:`job_spec.Checkpoint` adds (the volume).
    """
    props = spec["properties"]
    training = props["training"]
    top = _json_names(training_config.TrainerConfig) - _json_names(training_config.Training)
    node = {
        "type": "object",
        "required": training.get("required", []),
        "properties": {**training["properties"], **{name: props[name] for name in top}},
    }
    checkpoint = copy.deepcopy(props["checkpoint"])
    for name in _json_names(job_spec.Checkpoint) - _json_names(training_config.CheckpointPolicy):
        del checkpoint["properties"][name]
    node["properties"]["checkpoint"] = checkpoint
    return node


def test_the_trainer_configuration_matches_the_crd_field_by_field() -> None:
    node = _trainer_document_schema(SCHEMA["properties"]["spec"])
    assert _compare(training_config.TrainerConfig, node, "config") == []


def test_the_comparison_catches_a_drifted_default() -> None:
    drifted = copy.deepcopy(SCHEMA["properties"]["spec"])
    drifted["properties"]["training"]["properties"]["batchSize"]["default"] = 64
    drifted["properties"]["checkpoint"]["properties"]["keep"]["maximum"] = 5
    problems = _compare(job_spec.TrainingJobSpec, drifted, "spec")
    assert any(p.startswith("spec.training.batchSize: default") for p in problems)
    assert any(p.startswith("spec.checkpoint.keep: maximum") for p in problems)
    in_document = _compare(training_config.TrainerConfig, _trainer_document_schema(drifted), "c")
    assert any(p.startswith("c.batchSize: default") for p in in_document)
    assert any(p.startswith("c.checkpoint.keep: maximum") for p in in_document)


def test_early_stopping_left_out_is_off_and_written_in_is_on() -> None:
    base = {"image": "t:1", "entrypoint": "m:f", "training": {"epochs": 4}}
    assert job_spec.parse_spec(base).early_stopping.enabled is False
    assert job_spec.parse_spec({**base, "earlyStopping": {}}).early_stopping.enabled is True


# Manifests drawn from every optional field: the typed parse of the raw spec
# and of the API-server-defaulted spec must be the same object.
_optional_spec = st.fixed_dictionaries(
    {"image": st.just("t:1"), "entrypoint": st.just("m:f")},
    optional={
        "training": st.fixed_dictionaries(
            {"epochs": st.integers(5, 100)},
            optional={
                "batchSize": st.integers(1, 1024),
                "seed": st.integers(0, 2**31 - 1),
                "deterministic": st.booleans(),
                "hyperparameters": st.dictionaries(
                    st.text("ab", min_size=1), st.integers(-(2**63), 2**63 - 1)
                ),
            },
        ),
        "checkpoint": st.fixed_dictionaries(
            {},
            optional={
                "everyEpochs": st.integers(1, 10),
                "everySteps": st.integers(0, 100),
                "keep": st.integers(1, 10),
                "keepBest": st.booleans(),
                "size": st.sampled_from(["1Gi", "500Mi"]),
            },
        ),
        "earlyStopping": st.fixed_dictionaries(
            {},
            optional={
                "patience": st.integers(0, 5),
                "mode": st.sampled_from(["auto", "min", "max"]),
                "minDelta": st.floats(0, 1),
                "enabled": st.booleans(),
            },
        ),
        "restartPolicy": st.fixed_dictionaries(
            {},
            optional={
                "maxRestarts": st.integers(0, 10),
                "maxDisruptions": st.integers(0, 10),
                "backoff": st.fixed_dictionaries({}, optional={"factor": st.floats(1, 10)}),
            },
        ),
        "suspend": st.booleans(),
        "template": st.fixed_dictionaries(
            {}, optional={"nodeSelector": st.dictionaries(st.text("xy", min_size=1), st.text())}
        ),
    },
)


@settings(max_examples=60, deadline=None)
@given(raw=_optional_spec)
def test_typed_defaults_equal_the_api_servers_defaults(raw: dict[str, Any]) -> None:
    raw.setdefault("training", {"epochs": 5})
    manifest = {
        "apiVersion": "rekindle.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": "h"},
        "spec": raw,
    }
    assert validation.validate(manifest) == []
    defaulted = validation.apply_defaults(manifest)["spec"]
    assert job_spec.parse_spec(raw) == job_spec.parse_spec(defaulted)
    assert job_spec.parse_spec(
        job_spec.to_document(job_spec.parse_spec(raw))
    ) == job_spec.parse_spec(raw)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {"image": "t", "entrypoint": "m:f", "training": {"epochs": 0}},
            "spec.training.epochs: must be >= 1",
        ),
        ({"image": "t", "entrypoint": "m:f"}, "spec.training: required"),
        (
            {"image": "t", "entrypoint": "m:f", "training": {"epochs": 2}, "gpus": 1},
            "spec.gpus: unknown field",
        ),
        (
            {
                "image": "t",
                "entrypoint": "m:f",
                "training": {"epochs": 2},
                "earlyStopping": {"mode": "up"},
            },
            "spec.earlyStopping.mode: 'up' is not one of auto, min, max",
        ),
        (
            {"image": "t", "entrypoint": "x", "training": {"epochs": 2}},
            "spec.entrypoint: expected module:function, e.g. "
            "rekindle_trainer.examples.digits:build, got 'x'",
        ),
    ],
)
def test_parsing_bad_input_names_the_field(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(documents.DocumentError) as error:
        job_spec.parse_spec(doc)
    assert any(p.startswith(message) for p in error.value.problems), error.value.problems
