"""From pod manifest to launch plan: env, references, path mapping, config errors."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from tests.kube import podspec


def pod(container: dict[str, Any], volumes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "p1", "namespace": "ns", "uid": "u-1", "labels": {"app": "x"}},
        "spec": {
            "nodeName": "n1",
            "containers": [{"name": "main", "image": "img", **container}],
            "volumes": volumes or [],
        },
    }


def plan(manifest: dict[str, Any], **kwargs: Any) -> podspec.LaunchPlan:
    defaults: dict[str, Any] = {
        "pod_dir": Path("/node/pods/p1"),
        "volume_dirs": {
            "data": Path("/node/volumes/ns/claim"),
            "scratch": Path("/node/pods/p1/v/s"),
        },
        "objects": {},
        "base_env": {"PATH": "/bin"},
        "images": {},
    }
    return podspec.plan(manifest, **{**defaults, **kwargs})


def prepare(manifest: dict[str, Any]) -> podspec.LaunchPlan:
    """As the kubelet does: volumes first, then the plan."""
    podspec.volume_sources(manifest)
    return plan(manifest)


def test_command_args_env_and_mapped_paths() -> None:
    manifest = pod(
        {
            "command": ["trainer", "--out=/ckpt/run"],
            "args": ["--log", "/dev/termination-log", "$(MODE)"],
            "env": [
                {"name": "MODE", "value": "fast"},
                {"name": "DIR", "value": "/ckpt/job-1"},
                {"name": "MSG", "value": "/dev/termination-log"},
                {"name": "WHO", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                {"name": "BOTH", "value": "$(WHO).$(NS) costs $$5"},
            ],
            "volumeMounts": [{"name": "data", "mountPath": "/ckpt"}],
        }
    )
    result = plan(manifest)
    log = "/node/pods/p1/containers/main/termination-log"
    assert result.argv == ("trainer", "--out=/node/volumes/ns/claim/run", "--log", log, "fast")
    assert result.env["DIR"] == "/node/volumes/ns/claim/job-1"
    assert result.env["MSG"] == log
    assert (result.env["WHO"], result.env["NS"], result.env["APP"]) == ("p1", "ns", "x")
    assert result.env["BOTH"] == "p1.ns costs $5"
    assert result.env["PATH"] == "/bin"
    assert result.termination_log == Path(log)
    assert result.cwd == Path("/node/pods/p1/workdir")


def test_custom_termination_message_path_and_policy() -> None:
    manifest = pod(
        {
            "command": ["x"],
            "terminationMessagePath": "/tmp/msg",
            "terminationMessagePolicy": "FallbackToLogsOnError",
            "env": [{"name": "OUT", "value": "/tmp/msg"}],
        }
    )
    result = plan(manifest)
    assert result.env["OUT"] == str(result.termination_log)
    assert result.termination_policy == "FallbackToLogsOnError"


def test_config_map_and_secret_references() -> None:
    manifest = pod(
        {
            "command": ["x"],
            "env": [
                {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "a"}}},
                {"name": "S", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "s"}}},
                {
                    "name": "OPT",
                    "valueFrom": {
                        "configMapKeyRef": {"name": "nope", "key": "k", "optional": True}
                    },
                },
            ],
            "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}],
        }
    )
    assert podspec.referenced_objects(manifest) == {
        ("configmaps", "cm"),
        ("secrets", "sec"),
        ("configmaps", "nope"),
    }
    secret = podspec.object_data("secrets", {"data": {"s": base64.b64encode(b"hush").decode()}})
    result = plan(manifest, objects={("configmaps", "cm"): {"a": "1"}, ("secrets", "sec"): secret})
    assert (result.env["A"], result.env["S"], result.env["CM_a"]) == ("1", "hush", "1")
    assert "OPT" not in result.env


def test_registered_image_entrypoint() -> None:
    images = {"trainer:dev": podspec.Image(entrypoint=("rekindle-train",), cmd=("--help",))}
    no_command = pod({"image": "trainer:dev"})
    assert plan(no_command, images=images).argv == ("rekindle-train", "--help")
    with_args = pod({"image": "trainer:dev", "args": ["run"]})
    assert plan(with_args, images=images).argv == ("rekindle-train", "run")


@pytest.mark.parametrize(
    ("container", "volumes", "match"),
    [
        ({"image": "unknown"}, None, "does not know the ENTRYPOINT of image 'unknown'"),
        (
            {
                "command": ["x"],
                "env": [
                    {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "a"}}}
                ],
            },
            None,
            'configmap "cm" not found',
        ),
        (
            {
                "command": ["x"],
                "env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "spec.weird"}}}],
            },
            None,
            "fieldPath 'spec.weird' is not supported",
        ),
        (
            {"command": ["x"], "volumeMounts": [{"name": "ghost", "mountPath": "/g"}]},
            None,
            "no volume of that name",
        ),
        (
            {"command": ["x"], "volumeMounts": [{"name": "data", "mountPath": "rel"}]},
            None,
            "must be absolute",
        ),
        ({"command": ["x"]}, [{"name": "h", "hostPath": {"path": "/etc"}}], "hostPath"),
    ],
)
def test_config_errors_name_the_problem(
    container: dict[str, Any], volumes: list[dict[str, Any]] | None, match: str
) -> None:
    manifest = pod(container, volumes)
    with pytest.raises(podspec.ContainerConfigError, match=match):
        prepare(manifest)


def test_volume_sources() -> None:
    manifest = pod(
        {"command": ["x"]},
        [
            {"name": "data", "persistentVolumeClaim": {"claimName": "claim"}},
            {"name": "scratch", "emptyDir": {}},
            {"name": "conf", "configMap": {"name": "cm"}},
        ],
    )
    sources = podspec.volume_sources(manifest)
    assert [(s.kind, s.ref) for s in sources.values()] == [
        ("claim", "claim"),
        ("emptyDir", ""),
        ("configMap", "cm"),
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/ckpt", "/host/c"),
        ("/ckpt/", "/host/c"),
        ("/ckpt/a/b", "/host/c/a/b"),
        ("/ckptx", "/ckptx"),
        ("--dir=/ckpt/a", "--dir=/host/c/a"),
        ("/ckpt/deep/x", "/host/d/x"),
        ("relative", "relative"),
    ],
)
def test_map_path(value: str, expected: str) -> None:
    mounts = [
        podspec.Mount("/ckpt", Path("/host/c")),
        podspec.Mount("/ckpt/deep", Path("/host/d")),
    ]
    assert podspec.map_path(value, mounts) == expected


def test_container_ports_map_to_host_ports() -> None:
    manifest = pod(
        {
            "command": ["serve", "--port=9102", "9102", "19102"],
            "ports": [{"name": "metrics", "containerPort": 9102}],
            "env": [{"name": "PORT", "value": "9102"}, {"name": "OTHER", "value": "80"}],
        }
    )
    assert podspec.container_ports(manifest) == [9102]
    result = plan(manifest, ports={9102: 40001})
    assert result.argv == ("serve", "--port=40001", "40001", "19102")
    assert (result.env["PORT"], result.env["OTHER"]) == ("40001", "80")
    assert result.ports == {9102: 40001}
