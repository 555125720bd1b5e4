"""Fixtures of the emulated cluster for this suite (other suites import them the same way)."""

from tests.kube.fixtures import kopf_runner, kube_api, kubectl, kubelet, kubelet_options

__all__ = ["kopf_runner", "kube_api", "kubectl", "kubelet", "kubelet_options"]
