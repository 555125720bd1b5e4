"""Structural schema handling: nulls, pruning, defaults, OpenAPI and CEL validation."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from tests.kube import schema

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["size"],
            "properties": {
                "size": {"type": "integer", "minimum": 1},
                "mode": {"type": "string", "enum": ["a", "b"], "default": "a"},
                "port": {"x-kubernetes-int-or-string": True},
                "note": {"type": "string", "nullable": True},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "items": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"n": {"type": "integer", "default": 7}},
                    },
                },
            },
            "x-kubernetes-validations": [
                {"rule": "self.size <= 10", "message": "size must be at most 10"},
                {"rule": "self.size >= oldSelf.size", "message": "size cannot shrink"},
            ],
        },
    },
}


def obj(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "n"}, "spec": spec}


def test_admit_prunes_defaults_and_keeps_what_is_declared() -> None:
    stored, problems = schema.admit(
        {
            **obj(
                size=2,
                unknown=1,
                note=None,
                port="http",
                extra={"any": {"thing": 1}},
                items=[{}, {"n": 1, "junk": 2}],
            ),
            "top": 1,
        },
        SCHEMA,
    )
    assert problems == []
    assert stored["spec"] == {
        "size": 2,
        "mode": "a",
        "note": None,
        "port": "http",
        "extra": {"any": {"thing": 1}},
        "items": [{"n": 7}, {"n": 1}],
    }
    assert "top" not in stored
    assert stored["metadata"] == {"name": "n"}


def test_null_of_a_non_nullable_field_is_dropped_then_defaulted() -> None:
    stored, problems = schema.admit(obj(size=1, mode=None), SCHEMA)
    assert problems == []
    assert stored["spec"]["mode"] == "a"


@pytest.mark.parametrize(
    ("spec", "old", "expected"),
    [
        ({"size": 0}, None, "spec.size: Invalid value: 0 is less than the minimum of 1"),
        ({"mode": "a"}, None, "spec: Invalid value: 'size' is a required property"),
        ({"size": 1, "mode": "c"}, None, "spec.mode: Invalid value: 'c' is not one of"),
        ({"size": 1, "port": 1.5}, None, "spec.port: Invalid value: 1.5 is not valid"),
        ({"size": 11}, None, "spec: Invalid value: size must be at most 10"),
        ({"size": 2}, {"size": 3}, "spec: Invalid value: size cannot shrink"),
    ],
)
def test_problems_name_the_field(
    spec: dict[str, Any], old: dict[str, Any] | None, expected: str
) -> None:
    _, problems = schema.admit(obj(**spec), SCHEMA, None if old is None else obj(**old))
    assert any(p.startswith(expected) for p in problems), problems


def test_transition_rules_apply_to_updates_only() -> None:
    assert schema.admit(obj(size=2), SCHEMA)[1] == []
    assert schema.admit(obj(size=4), SCHEMA, obj(size=3))[1] == []


def test_the_validator_is_built_once_per_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every write of a custom resource validates: building the validator each time was slow."""
    built: list[object] = []
    real = jsonschema.Draft4Validator

    def counting(*args: Any, **kwargs: Any) -> Any:
        built.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(jsonschema, "Draft4Validator", counting)
    own = {**SCHEMA}  # a schema object no earlier test has cached
    for size in (1, 2, 3):
        assert schema.problems(obj(size=size), own) == []
    assert schema.problems(obj(size=0), own)  # still validates: one problem found
    assert len(built) == 1


def test_a_rule_is_evaluated_once_per_input_and_still_judges_each_write(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """CEL is pure, so a rule's outcome is remembered per value; a new value is evaluated."""
    monkeypatch.setattr(schema, "_OUTCOMES", {})
    evaluated: list[str] = []
    real = schema._program

    def counting(rule: str) -> Any:
        evaluated.append(rule)
        return real(rule)

    monkeypatch.setattr(schema, "_program", counting)
    for _ in range(3):
        assert schema.problems(obj(size=4), SCHEMA, old=obj(size=3)) == []
    assert len(evaluated) == 2  # both rules, once
    assert schema.problems(obj(size=11), SCHEMA, old=obj(size=12)) == [
        "spec: Invalid value: size must be at most 10",
        "spec: Invalid value: size cannot shrink",
    ]
    assert len(evaluated) == 4
