"""A real Prometheus (Debian's ``prometheus``) for tests, scraping local processes.

Kubernetes service discovery needs a cluster, so targets are written to a
``file_sd`` file (trainer pods, from the pod objects the operator created) or
a static config (the operator) carrying the same ``__meta_kubernetes_*``
labels discovery would set. The relabeling is the Prometheus Operator's
defaults followed by the chart's own PodMonitor/ServiceMonitor relabelings,
translated from the rendered objects, so the labels the dashboard and alerts
rely on come out of the chart's real monitor configuration.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _meta_label(key: str) -> str:
    """The discovery label name of a label key (``rekindle.dev/job``: ``rekindle_dev_job``)."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", key)


def _relabeling(rule: dict[str, Any]) -> dict[str, Any]:
    """A Prometheus Operator RelabelConfig (camelCase) as Prometheus' relabel_config."""
    out = {_CAMEL.sub("_", key).lower(): value for key, value in rule.items()}
    if "action" in out:
        out["action"] = str(out["action"]).lower()
    return out


@dataclass(frozen=True)
class PodTarget:
    """A local process standing in for a pod: its port, namespace, name and labels."""

    port: int
    namespace: str
    pod: str
    labels: dict[str, str]
    container: str = "main"


def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether ``labels`` satisfy a LabelSelector's matchLabels (the chart uses no expressions)."""
    assert not selector.get("matchExpressions"), "matchExpressions are not emulated"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def _namespace_selected(selector: dict[str, Any], own: str, namespace: str) -> bool:
    """A Prometheus Operator NamespaceSelector."""
    if selector.get("any"):
        return True
    return namespace in selector.get("matchNames", [own])


def pod_monitor_jobs(
    monitor: dict[str, Any], targets_file: Path, interval: str
) -> list[dict[str, Any]]:
    """Scrape configs for a rendered PodMonitor, one per endpoint, fed by a file of targets.

    Prometheus re-reads ``targets_file`` when it changes, so a test adds pods
    as the operator creates them (see :func:`pod_target_groups`).
    """
    meta = monitor["metadata"]
    jobs = []
    for index, endpoint in enumerate(monitor["spec"]["podMetricsEndpoints"]):
        defaults = [
            # The Prometheus Operator scrapes running pods only.
            {
                "action": "drop",
                "source_labels": ["__meta_kubernetes_pod_phase"],
                "regex": "(Failed|Succeeded)",
            },
            {
                "action": "keep",
                "source_labels": ["__meta_kubernetes_pod_container_port_name"],
                "regex": endpoint["port"],
            },
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {
                "source_labels": ["__meta_kubernetes_pod_container_name"],
                "target_label": "container",
            },
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
            {"target_label": "job", "replacement": f"{meta['namespace']}/{meta['name']}"},
            {"target_label": "endpoint", "replacement": endpoint["port"]},
        ]
        jobs.append(
            {
                "job_name": f"podMonitor/{meta['namespace']}/{meta['name']}/{index}",
                "scrape_interval": interval,
                "scrape_timeout": interval,
                "metrics_path": endpoint.get("path", "/metrics"),
                "honor_labels": bool(endpoint.get("honorLabels", False)),
                "file_sd_configs": [{"files": [str(targets_file)], "refresh_interval": "1s"}],
                "relabel_configs": defaults
                + [_relabeling(rule) for rule in endpoint.get("relabelings", [])],
            }
        )
    return jobs


def pod_target_groups(
    monitor: dict[str, Any], pods: list[dict[str, Any]], addresses: dict[str, int]
) -> list[dict[str, Any]]:
    """What Kubernetes discovery would give for ``pods`` that the PodMonitor selects.

    One group per container port, with the ``__meta_kubernetes_pod_*`` labels
    that discovery sets; the address is the local process standing in for the
    pod (``addresses``: pod name -> port on 127.0.0.1).
    """
    spec = monitor["spec"]
    groups = []
    for pod in pods:
        meta = pod["metadata"]
        labels = meta.get("labels") or {}
        if not _matches(spec["selector"], labels):
            continue
        if not _namespace_selected(
            spec.get("namespaceSelector", {}), monitor["metadata"]["namespace"], meta["namespace"]
        ):
            continue
        for container in pod["spec"]["containers"]:
            for port in container.get("ports") or []:
                groups.append(
                    {
                        "targets": [f"127.0.0.1:{addresses[meta['name']]}"],
                        "labels": {
                            "__meta_kubernetes_namespace": meta["namespace"],
                            "__meta_kubernetes_pod_name": meta["name"],
                            "__meta_kubernetes_pod_phase": (pod.get("status") or {}).get(
                                "phase", "Pending"
                            ),
                            "__meta_kubernetes_pod_container_name": container["name"],
                            "__meta_kubernetes_pod_container_port_name": port.get("name", ""),
                            "__meta_kubernetes_pod_container_port_number": str(
                                port["containerPort"]
                            ),
                            **{
                                f"__meta_kubernetes_pod_label_{_meta_label(k)}": v
                                for k, v in labels.items()
                            },
                        },
                    }
                )
    return groups


def write_targets(path: Path, groups: list[dict[str, Any]]) -> None:
    """Replace a file_sd targets file in one rename (Prometheus never reads half of it)."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(groups))
    temporary.replace(path)


def service_monitor_jobs(
    monitor: dict[str, Any],
    service: dict[str, Any],
    pod: PodTarget,
    interval: str,
) -> list[dict[str, Any]]:
    """Scrape configs for a rendered ServiceMonitor that selects ``service`` backed by ``pod``."""
    spec = monitor["spec"]
    meta = monitor["metadata"]
    svc_meta = service["metadata"]
    assert _matches(spec["selector"], svc_meta["labels"]), "the ServiceMonitor misses the Service"
    assert _namespace_selected(
        spec.get("namespaceSelector", {}), meta["namespace"], svc_meta["namespace"]
    )
    assert _matches({"matchLabels": service["spec"]["selector"]}, pod.labels), (
        "the Service misses the pod"
    )
    port_names = {p["name"] for p in service["spec"]["ports"]}
    jobs = []
    for index, endpoint in enumerate(spec["endpoints"]):
        assert endpoint["port"] in port_names, f"no Service port named {endpoint['port']}"
        static = [
            {
                "targets": [f"127.0.0.1:{pod.port}"],
                "labels": {
                    "__meta_kubernetes_namespace": svc_meta["namespace"],
                    "__meta_kubernetes_service_name": svc_meta["name"],
                    "__meta_kubernetes_pod_name": pod.pod,
                    "__meta_kubernetes_pod_container_name": pod.container,
                },
            }
        ]
        defaults = [
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "service"},
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
            {
                "source_labels": ["__meta_kubernetes_pod_container_name"],
                "target_label": "container",
            },
            {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "job"},
            {"target_label": "endpoint", "replacement": endpoint["port"]},
        ]
        jobs.append(
            {
                "job_name": f"serviceMonitor/{meta['namespace']}/{meta['name']}/{index}",
                "scrape_interval": interval,
                "scrape_timeout": interval,
                "metrics_path": endpoint.get("path", "/metrics"),
                "honor_labels": bool(endpoint.get("honorLabels", False)),
                "static_configs": static,
                "relabel_configs": defaults
                + [_relabeling(rule) for rule in endpoint.get("relabelings", [])],
            }
        )
    return jobs


@dataclass
class Prometheus:
    """A running Prometheus and its HTTP API."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path
    calls: list[str] = field(default_factory=list)

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        query = urllib.parse.urlencode(params, doseq=True)
        with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=30) as response:
            doc = json.load(response)
        assert doc["status"] == "success", doc
        return doc["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query; the result vector (each item has ``metric`` and ``value``)."""
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        self.calls.append(expr)
        data = self._get("/api/v1/query", params)
        assert data["resultType"] == "vector", (expr, data["resultType"])
        result: list[dict[str, Any]] = data["result"]
        return result

    def last_sample_time(self, selector: str, at: float, window: str = "15m") -> float:
        """When the newest raw sample of any series ``selector`` matches was scraped.

        An instant query at that time sees the series even after its target is gone.
        """
        data = self._get("/api/v1/query", {"query": f"{selector}[{window}]", "time": f"{at:.3f}"})
        assert data["resultType"] == "matrix", (selector, data["resultType"])
        times = [float(t) for series in data["result"] for t, _ in series["values"]]
        assert times, f"no sample of {selector} in the {window} before {at}"
        return max(times)

    def label_values(self, label: str, match: str, start: float, end: float) -> list[str]:
        """What Grafana's ``label_values(match, label)`` lists for a time range."""
        values: list[str] = self._get(
            f"/api/v1/label/{label}/values",
            {"match[]": match, "start": f"{start:.3f}", "end": f"{end:.3f}"},
        )
        return values

    def targets(self) -> list[dict[str, Any]]:
        """The active scrape targets."""
        targets: list[dict[str, Any]] = self._get("/api/v1/targets", {})["activeTargets"]
        return targets

    def wait_for(self, expr: str, timeout: float, poll: float = 0.5) -> list[dict[str, Any]]:
        """Poll an instant query until it returns something; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"{expr!r} returned nothing within {timeout}s")
            time.sleep(poll)


@contextmanager
def prometheus(
    binary: str, workdir: Path, scrape_configs: list[dict[str, Any]]
) -> Iterator[Prometheus]:
    """Start Prometheus on a free loopback port with ``scrape_configs``; stop it on exit."""
    config = workdir / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": scrape_configs,
            }
        )
    )
    port = free_port()
    log = workdir / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=1h",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Prometheus(url=f"http://127.0.0.1:{port}", process=process, log=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise AssertionError(f"prometheus exited: {log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{server.url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"prometheus not ready in 60 s: {log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
