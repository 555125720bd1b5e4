"""Render the chart with Helm's own engine and look at what it produced.

Every chart test goes through :func:`render` / :func:`objects`, which load
``charts/rekindle`` with helm-python-sdk (Helm's Go engine behind a C ABI), so
the templates are exercised exactly as ``helm install`` would.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import yaml

from tests.support.deps import REPO_ROOT, shared_testdata

CHART_DIR = REPO_ROOT / "charts" / "rekindle"
RELEASE = "rk"
NAMESPACE = "rekindle-system"
#: Validate against the oldest supported Kubernetes (Chart.yaml kubeVersion) and the newest known.
KUBE_VERSIONS = ("1.27.0", "1.37.0")

#: Every values switch that adds or removes objects: (path, values that differ).
TOGGLES: tuple[tuple[str, tuple[Any, ...]], ...] = (
    ("watch.scope", ("cluster", "namespaced")),
    ("monitoring.serviceMonitor.enabled", (False, True)),
    ("monitoring.podMonitor.enabled", (False, True)),
    ("monitoring.prometheusRule.enabled", (False, True)),
    ("monitoring.dashboard.enabled", (False, True)),
    ("networkPolicy.enabled", (False, True)),
    ("tests.enabled", (False, True)),
    ("rbac.create", (False, True)),
    ("serviceAccount.create", (False, True)),
    ("peering.create", (False, True)),
)
#: Namespaces used whenever a test picks watch.scope=namespaced.
WATCHED = ("team-a", "team-b")

ALL_ON: dict[str, Any] = {
    # Two replicas add the PodDisruptionBudget and the anti-affinity.
    "replicaCount": 2,
    "monitoring": {
        "serviceMonitor": {"enabled": True},
        "podMonitor": {"enabled": True},
        "prometheusRule": {"enabled": True},
        "dashboard": {"enabled": True},
    },
    "networkPolicy": {"enabled": True},
}

#: The alerts, with the ServiceMonitor whose scrape job RekindleOperatorDown names.
RULES_ON: dict[str, Any] = {
    "monitoring": {"prometheusRule": {"enabled": True}, "serviceMonitor": {"enabled": True}}
}


def nested(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"a.b": 1}`` -> ``{"a": {"b": 1}}``; adds watched namespaces for scope namespaced."""
    out: dict[str, Any] = {}
    for dotted, value in flat.items():
        node = out
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    if out.get("watch", {}).get("scope") == "namespaced":
        out["watch"].setdefault("namespaces", list(WATCHED))
    if out.get("serviceAccount", {}).get("create") is False:
        out["serviceAccount"].setdefault("name", "existing-operator-sa")
    return out


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``extra`` over ``base`` without changing either."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@functools.cache
def chart() -> helm.Chart:
    """The chart, loaded once per test session (loading is the slow part)."""
    return helm.Chart.load(CHART_DIR)


def render(
    values: dict[str, Any] | None = None,
    *,
    name: str = RELEASE,
    namespace: str = NAMESPACE,
    upgrade: bool = False,
) -> dict[str, str]:
    """Template path -> rendered text, as ``helm install`` (or ``helm upgrade``) would make it."""
    return chart().render(
        values or {}, name=name, namespace=namespace, is_install=not upgrade, is_upgrade=upgrade
    )


class StrictLoader(yaml.CSafeLoader):
    """A YAML loader that rejects duplicate keys (which Kubernetes would silently merge)."""


def _construct_mapping(loader: StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    """Build a mapping, failing on a key seen twice."""
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse(rendered: dict[str, str]) -> list[dict[str, Any]]:
    """Every Kubernetes object in a render (NOTES.txt excluded), in template order."""
    objs: list[dict[str, Any]] = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.load_all(text, Loader=StrictLoader):
            if doc:
                doc.setdefault("metadata", {})
                doc["metadata"].setdefault("annotations", {})
                doc["_template"] = path
                objs.append(doc)
    return objs


def objects(values: dict[str, Any] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
    """Render and parse in one step."""
    return parse(render(values, **kwargs))


def is_hook(obj: dict[str, Any]) -> bool:
    """Whether Helm runs the object as a hook (test, pre-upgrade) rather than installing it."""
    return "helm.sh/hook" in obj["metadata"]["annotations"]


def installed(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The objects the release installs and keeps: hooks left out."""
    return [o for o in objs if not is_hook(o)]


def of_kind(objs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The objects of one kind."""
    return [o for o in objs if o["kind"] == kind]


def one(objs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    """The single object of ``kind``; fails when there are none or several."""
    found = of_kind(objs, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def clean(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as it would go to the API server (without test bookkeeping)."""
    out = {k: v for k, v in obj.items() if k != "_template"}
    if not out["metadata"].get("annotations"):
        out["metadata"] = {k: v for k, v in out["metadata"].items() if k != "annotations"}
    return out


# --------------------------------------------------------------------------
# Custom resource schemas, with unknown fields as errors (kubectl's strict
# field validation).
# --------------------------------------------------------------------------


def _close(schema: Any) -> Any:
    """A copy of an OpenAPI v3 schema where objects with properties reject unknown fields."""
    if isinstance(schema, list):
        return [_close(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _close(value) for key, value in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def _crd_validators(paths: list[Path]) -> dict[tuple[str, str], jsonschema.Draft202012Validator]:
    """(apiVersion, kind) -> a closed-schema validator for each CRD version in ``paths``."""
    validators: dict[tuple[str, str], jsonschema.Draft202012Validator] = {}
    for path in paths:
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd:
                continue
            group = crd["spec"]["group"]
            kind = crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
                # ObjectMeta is validated by the API server, not the CRD schema.
                schema.setdefault("properties", {})
                schema["properties"]["metadata"] = {"type": "object"}
                schema["properties"]["apiVersion"] = {"type": "string"}
                schema["properties"]["kind"] = {"type": "string"}
                validators[(f"{group}/{version['name']}", kind)] = jsonschema.Draft202012Validator(
                    _close(schema)
                )
    return validators


def prometheus_operator_validators() -> dict[tuple[str, str], jsonschema.Draft202012Validator]:
    """Validators for ServiceMonitor, PodMonitor and PrometheusRule (from ../shared/testdata)."""
    folder = shared_testdata("prometheus-operator-crds")
    return _crd_validators(sorted(folder.glob("*.yaml")))


def chart_crd_validators() -> dict[tuple[str, str], jsonschema.Draft202012Validator]:
    """Validators for the CRDs the chart ships (TrainingJob, kopf peerings)."""
    return _crd_validators(sorted((CHART_DIR / "crds").glob("*.yaml")))


def crd_errors(
    obj: dict[str, Any], validators: dict[tuple[str, str], jsonschema.Draft202012Validator]
) -> list[str]:
    """Schema errors of a custom resource, each with its JSON path."""
    key = (obj["apiVersion"], obj["kind"])
    assert key in validators, f"no CRD schema for {key}"
    return [
        f"{obj['kind']}/{obj['metadata'].get('name')}: {error.json_path}: {error.message}"
        for error in validators[key].iter_errors(clean(obj))
    ]


def kube_errors(obj: dict[str, Any], version: str) -> list[str]:
    """kubernetes-validate's strict errors for a built-in object."""
    try:
        kubernetes_validate.validate(clean(obj), version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{obj['kind']}/{obj['metadata']['name']} ({version}): {exc.message} at {exc.path}"]
    return []


def validate_all(objs: list[dict[str, Any]]) -> list[str]:
    """Errors of every object: built-ins via kubernetes-validate, custom ones via their CRDs."""
    crds = {**prometheus_operator_validators(), **chart_crd_validators()}
    errors: list[str] = []
    for obj in objs:
        if (obj["apiVersion"], obj["kind"]) in crds:
            errors += crd_errors(obj, crds)
        else:
            for version in KUBE_VERSIONS:
                errors += kube_errors(obj, version)
    return errors


def canonical(obj: dict[str, Any]) -> str:
    """A stable text form, to validate each distinct object once."""
    return json.dumps(clean(obj), sort_keys=True)


def walk(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (dotted path, value) in a nested structure, depth first."""
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{path}[{index}]")
