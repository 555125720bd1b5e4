"""From a pod manifest to a local process: what the process kubelet will run, and where.

Pure functions. :func:`plan` turns a pod's first container into a
:class:`LaunchPlan`: argv (``command`` + ``args``, or a registered image
entrypoint), the environment (``value``, ``valueFrom`` field/ConfigMap/Secret
references, ``envFrom``, ``$(VAR)`` expansion), the volume mounts mapped to
host folders, and the termination message file. A container process cannot
see ``/var/lib/…`` as a container would, so every env value and argument that
names a path under a mount (or the termination message path) is rewritten to
the host folder behind it. Anything a runtime would refuse raises
:class:`ContainerConfigError` (reported as ``CreateContainerConfigError``).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.\-]*)\)")
_LABEL_REF = re.compile(r"^metadata\.(labels|annotations)\['([^']+)'\]$")


class ContainerConfigError(ValueError):
    """The container cannot be created as configured (``CreateContainerConfigError``)."""


@dataclass(frozen=True)
class Image:
    """What the process kubelet knows of an image: its ENTRYPOINT and CMD."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()


@dataclass(frozen=True)
class Mount:
    """A container path and the host folder (or file) that stands in for it."""

    container_path: str
    host_path: Path
    read_only: bool = False


@dataclass(frozen=True)
class LaunchPlan:
    """Everything needed to start the container's process."""

    container: str
    argv: tuple[str, ...]
    env: dict[str, str]
    cwd: Path
    termination_log: Path
    termination_policy: str
    mounts: tuple[Mount, ...] = field(default=())
    #: Host port standing in for each container port (pods share the host's network here).
    ports: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class VolumeSource:
    """A pod volume as the kubelet provisions it: ``kind`` is claim, emptyDir, configMap, secret."""

    name: str
    kind: str
    ref: str = ""
    optional: bool = False


def volume_sources(pod: Mapping[str, Any]) -> dict[str, VolumeSource]:
    """The pod's volumes by name; unsupported kinds raise :class:`ContainerConfigError`."""
    result: dict[str, VolumeSource] = {}
    for volume in pod.get("spec", {}).get("volumes") or []:
        name = volume.get("name")
        if "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"].get("claimName")
            result[name] = VolumeSource(name, "claim", claim or "")
        elif "emptyDir" in volume:
            result[name] = VolumeSource(name, "emptyDir")
        elif "configMap" in volume:
            source = volume["configMap"]
            result[name] = VolumeSource(
                name, "configMap", source.get("name", ""), bool(source.get("optional"))
            )
        elif "secret" in volume:
            source = volume["secret"]
            result[name] = VolumeSource(
                name, "secret", source.get("secretName", ""), bool(source.get("optional"))
            )
        else:
            kinds = sorted(set(volume) - {"name"})
            raise ContainerConfigError(
                f"volume {name!r}: {kinds} volumes are not emulated by the process kubelet; "
                "use persistentVolumeClaim, emptyDir, configMap or secret"
            )
    return result


def referenced_objects(pod: Mapping[str, Any]) -> set[tuple[str, str]]:
    """``(kind, name)`` of every ConfigMap and Secret the first container's env refers to."""
    refs: set[tuple[str, str]] = set()
    container = first_container(pod)
    for env in container.get("env") or []:
        source = env.get("valueFrom") or {}
        if "configMapKeyRef" in source:
            refs.add(("configmaps", source["configMapKeyRef"].get("name", "")))
        if "secretKeyRef" in source:
            refs.add(("secrets", source["secretKeyRef"].get("name", "")))
    for env_from in container.get("envFrom") or []:
        if "configMapRef" in env_from:
            refs.add(("configmaps", env_from["configMapRef"].get("name", "")))
        if "secretRef" in env_from:
            refs.add(("secrets", env_from["secretRef"].get("name", "")))
    for source in volume_sources(pod).values():
        if source.kind == "configMap":
            refs.add(("configmaps", source.ref))
        elif source.kind == "secret":
            refs.add(("secrets", source.ref))
    return refs


def object_data(kind: str, obj: Mapping[str, Any]) -> dict[str, str]:
    """The string data of a ConfigMap or a Secret (``data`` of a Secret is base64)."""
    data: dict[str, str] = dict(obj.get("stringData") or {}) if kind == "secrets" else {}
    for key, value in (obj.get("data") or {}).items():
        data[key] = base64.b64decode(value).decode() if kind == "secrets" else str(value)
    return data


def first_container(pod: Mapping[str, Any]) -> dict[str, Any]:
    """The pod's first container; a pod without one is invalid."""
    containers = pod.get("spec", {}).get("containers") or []
    if not containers:
        raise ContainerConfigError("spec.containers: Required value: a pod needs a container")
    container: dict[str, Any] = containers[0]
    return container


def map_path(value: str, mounts: Sequence[Mount]) -> str:
    """Rewrite a container path under a mount (whole value, or after ``=``) to the host path."""
    prefix, sep, rest = (
        value.partition("=") if "=" in value and not value.startswith("/") else ("", "", value)
    )
    for mount in sorted(mounts, key=lambda m: len(m.container_path), reverse=True):
        root = mount.container_path.rstrip("/") or "/"
        if rest == root or rest.startswith(root + "/"):
            tail = rest[len(root) :].lstrip("/")
            host = mount.host_path / tail if tail else mount.host_path
            return f"{prefix}{sep}{host}"
    return value


def map_port(value: str, ports: Mapping[int, int]) -> str:
    """Rewrite a value that is a container port (whole, or after ``=``) to its host port."""
    prefix, sep, rest = value.rpartition("=")
    if rest.isdigit() and int(rest) in ports:
        return f"{prefix}{sep}{ports[int(rest)]}"
    return value


def container_ports(pod: Mapping[str, Any]) -> list[int]:
    """The first container's declared ``containerPort`` numbers."""
    ports = first_container(pod).get("ports") or []
    return [int(p["containerPort"]) for p in ports if "containerPort" in p]


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: known names are replaced, ``$$`` is a literal ``$``."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return _VAR_REF.sub(replace, text)


def _field_ref(pod: Mapping[str, Any], path: str) -> str:
    meta = pod.get("metadata", {})
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": pod.get("spec", {}).get("nodeName"),
        "spec.serviceAccountName": pod.get("spec", {}).get("serviceAccountName"),
        "status.podIP": "127.0.0.1",
        "status.hostIP": "127.0.0.1",
    }
    if path in simple:
        return str(simple[path] or "")
    if match := _LABEL_REF.match(path):
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    raise ContainerConfigError(
        f"env fieldRef.fieldPath {path!r} is not supported; use metadata.name, "
        "metadata.namespace, metadata.uid, metadata.labels['k'], metadata.annotations['k'], "
        "spec.nodeName, spec.serviceAccountName, status.podIP or status.hostIP"
    )


def _key_ref(
    kind: str, source: Mapping[str, Any], objects: Mapping[tuple[str, str], dict[str, str]]
) -> str | None:
    name, key = source.get("name", ""), source.get("key", "")
    data = objects.get((kind, name))
    if data is None or key not in data:
        if source.get("optional"):
            return None
        what = "configmap" if kind == "configmaps" else "secret"
        missing = f'{what} "{name}" not found' if data is None else f'key "{key}" not in {what}'
        raise ContainerConfigError(f"{missing} (env from {kind}/{name} key {key!r})")
    return data[key]


def build_env(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    objects: Mapping[tuple[str, str], dict[str, str]],
    base: Mapping[str, str],
) -> dict[str, str]:
    """The container's environment over ``base``, in the order Kubernetes builds it."""
    env: dict[str, str] = dict(base)
    for env_from in container.get("envFrom") or []:
        prefix = env_from.get("prefix", "")
        for kind, ref_key in (("configmaps", "configMapRef"), ("secrets", "secretRef")):
            if ref_key in env_from:
                ref = env_from[ref_key]
                data = objects.get((kind, ref.get("name", "")))
                if data is None and not ref.get("optional"):
                    raise ContainerConfigError(f'{kind[:-1]} "{ref.get("name")}" not found')
                env.update({f"{prefix}{k}": v for k, v in (data or {}).items()})
    for item in container.get("env") or []:
        name = item.get("name")
        if not name:
            raise ContainerConfigError("env: every item needs a name")
        if "valueFrom" in item:
            source = item["valueFrom"]
            value: str | None
            if "fieldRef" in source:
                value = _field_ref(pod, source["fieldRef"].get("fieldPath", ""))
            elif "configMapKeyRef" in source:
                value = _key_ref("configmaps", source["configMapKeyRef"], objects)
            elif "secretKeyRef" in source:
                value = _key_ref("secrets", source["secretKeyRef"], objects)
            else:
                raise ContainerConfigError(
                    f"env {name!r}: valueFrom {sorted(source)} is not emulated; use fieldRef, "
                    "configMapKeyRef or secretKeyRef"
                )
            if value is not None:
                env[name] = value
        else:
            env[name] = expand(str(item.get("value", "")), env)
    return env


def plan(
    pod: Mapping[str, Any],
    *,
    pod_dir: Path,
    volume_dirs: Mapping[str, Path],
    objects: Mapping[tuple[str, str], dict[str, str]],
    base_env: Mapping[str, str],
    images: Mapping[str, Image],
    ports: Mapping[int, int] | None = None,
) -> LaunchPlan:
    """How to run the pod's first container as a local process.

    Args:
        pod: the pod manifest as the API serves it.
        pod_dir: a folder of this pod (working dir, termination message file).
        volume_dirs: host folder of each pod volume, by volume name.
        objects: data of the ConfigMaps and Secrets the pod refers to, by (plural, name).
        base_env: the environment every container starts with (PATH, HOME…).
        images: entrypoints of images whose containers give no ``command``.
        ports: host port for each container port; env values and arguments that are a
            container port (e.g. ``REKINDLE_METRICS_PORT=9102``) get the host port, so
            that pods and parallel test runs do not clash on the host's network.
    """
    port_map = dict(ports or {})
    container = first_container(pod)
    name = container.get("name") or "main"
    mounts: list[Mount] = []
    for mount in container.get("volumeMounts") or []:
        volume, path = mount.get("name"), mount.get("mountPath")
        if volume not in volume_dirs:
            raise ContainerConfigError(
                f"container {name!r}: volumeMounts[{volume!r}]: no volume of that name in the pod"
            )
        if not path or not str(path).startswith("/"):
            raise ContainerConfigError(
                f"container {name!r}: volumeMounts[{volume!r}].mountPath must be absolute"
            )
        host = (
            volume_dirs[volume] / mount["subPath"] if mount.get("subPath") else volume_dirs[volume]
        )
        mounts.append(Mount(str(path), host, bool(mount.get("readOnly"))))
    termination_path = str(container.get("terminationMessagePath") or "/dev/termination-log")
    termination_log = pod_dir / "containers" / name / "termination-log"
    mounts.append(Mount(termination_path, termination_log))

    env = build_env(pod, container, objects, base_env)
    env = {key: map_port(map_path(value, mounts), port_map) for key, value in env.items()}

    image = images.get(str(container.get("image", "")), Image())
    command = [str(c) for c in container.get("command") or image.entrypoint]
    args = [
        str(a) for a in container.get("args") or ([] if container.get("command") else image.cmd)
    ]
    if not command and not args:
        raise ContainerConfigError(
            f"container {name!r}: no command, and the process kubelet does not know the "
            f"ENTRYPOINT of image {container.get('image')!r}; give the container a command or "
            "register the image (kubelet.images[IMAGE] = Image(entrypoint=(...)))"
        )
    argv = tuple(
        map_port(map_path(expand(part, env), mounts), port_map) for part in [*command, *args]
    )
    working_dir = container.get("workingDir")
    if working_dir and not str(working_dir).startswith("/"):
        raise ContainerConfigError(f"container {name!r}: workingDir must be an absolute path")
    cwd = Path(map_path(str(working_dir), mounts)) if working_dir else pod_dir / "workdir"
    return LaunchPlan(
        container=name,
        argv=argv,
        env=env,
        cwd=cwd,
        termination_log=termination_log,
        termination_policy=str(container.get("terminationMessagePolicy") or "File"),
        mounts=tuple(mounts),
        ports=port_map,
    )
