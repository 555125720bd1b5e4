"""The chart's hook scripts: the CRD upgrade (``helm upgrade``) and the ``helm test`` check.

Both run in the operator image, which has Python, so that no hook needs
another image; they use the standard library only and reach the API server
with their pod's ServiceAccount token.

``upgrade-crds FOLDER`` (the pre-upgrade hook Job): Helm creates ``crds/`` on
the first install and never touches it again, so a chart upgrade that adds a
TrainingJob field would leave the old schema in place and the API server
would prune the new field. This replaces the spec of each CRD in FOLDER (JSON
files, rendered from ``crds/`` by the chart) with the chart's, keeping
everything else on the live object: labels and annotations others set (merged
under the chart's), finalizers, owners. It only updates CRDs that exist: a
missing one means they are managed elsewhere (``helm install --skip-crds``),
and the upgrade stops with the fix.

``test-trainingjob --namespace NS --image IMAGE`` (a ``helm test`` pod):
creates a suspended TrainingJob (suspended, it starts no pod and pulls no
image), waits until the operator marks it with the condition
``Suspended=True``, then deletes it and waits until it is gone (the operator
removes its finalizer). Each failure says what to check.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
CRDS_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
API_GROUP_PATH = "/apis/rekindle.dev/v1alpha1"
#: Attempts of one CRD update when someone else changes the CRD in between (HTTP 409).
CONFLICT_RETRIES = 5


class HookError(Exception):
    """The hook failed; the message says which object and what to do."""


def api_url() -> str:
    """The API server: ``REKINDLE_API_URL`` when set (tests), else the in-cluster address."""
    explicit = os.environ.get("REKINDLE_API_URL")
    if explicit:
        return explicit.rstrip("/")
    host = os.environ["KUBERNETES_SERVICE_HOST"]
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


def call(method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    """One API request with the pod's token: (HTTP status, the JSON answer)."""
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    token = SERVICE_ACCOUNT / "token"
    if token.exists():
        headers["Authorization"] = f"Bearer {token.read_text().strip()}"
    ca = SERVICE_ACCOUNT / "ca.crt"
    context = ssl.create_default_context(cafile=str(ca)) if ca.exists() else None
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(api_url() + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30, context=context) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        try:
            answer = json.loads(text)
        except ValueError:
            answer = {"message": text}
        return exc.code, answer if isinstance(answer, dict) else {"message": text}


def replaced(live: dict[str, Any], chart: dict[str, Any]) -> dict[str, Any]:
    """The live CRD with the chart's spec, and the chart's labels and annotations merged in."""
    new = copy.deepcopy(live)
    new.pop("status", None)
    new["spec"] = chart["spec"]
    meta = new["metadata"]
    for field in ("labels", "annotations"):
        merged = {**(meta.get(field) or {}), **(chart["metadata"].get(field) or {})}
        if merged:
            meta[field] = merged
    return new


def upgrade(chart: dict[str, Any]) -> str:
    """Replace one CRD's spec with the chart's; a line saying what happened."""
    name = chart["metadata"]["name"]
    path = f"{CRDS_PATH}/{name}"
    for _ in range(CONFLICT_RETRIES):
        status, live = call("GET", path)
        if status == 404:
            raise HookError(
                f"CRD {name} is not installed, so this upgrade cannot update it. Create it with "
                "`kubectl apply --server-side -f charts/rekindle/crds/`, or set "
                "crds.upgrade=false if you manage the CRDs yourself."
            )
        if status != 200:
            raise HookError(f"reading CRD {name}: HTTP {status}: {live.get('message')}")
        status, answer = call("PUT", path, replaced(live, chart))
        if status == 409:
            continue  # changed since we read it: read again
        if status != 200:
            raise HookError(f"updating CRD {name}: HTTP {status}: {answer.get('message')}")
        before = live["metadata"].get("resourceVersion")
        after = answer["metadata"].get("resourceVersion")
        return f"CRD {name}: {'updated' if before != after else 'already up to date'}"
    raise HookError(f"updating CRD {name}: still conflicting after {CONFLICT_RETRIES} tries")


def manifest(image: str) -> dict[str, Any]:
    """A TrainingJob that is suspended from the start: the operator runs nothing for it."""
    return {
        "apiVersion": "rekindle.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {
            "generateName": "helm-test-",
            "labels": {"app.kubernetes.io/part-of": "rekindle", "rekindle.dev/helm-test": "true"},
        },
        "spec": {
            "image": image,
            "entrypoint": "rekindle_trainer.examples.digits:build",
            "training": {"epochs": 1},
            "suspend": True,
        },
    }


def create(namespace: str, image: str) -> str:
    """Create the suspended job; its name."""
    status, answer = call(
        "POST", f"{API_GROUP_PATH}/namespaces/{namespace}/trainingjobs", manifest(image)
    )
    if status not in (200, 201, 202):
        raise HookError(
            f"creating a TrainingJob in {namespace} failed: HTTP {status}: {answer.get('message')} "
            "(is the CRD installed, and may the test's ServiceAccount create TrainingJobs there?)"
        )
    name: str = answer["metadata"]["name"]
    print(f"created TrainingJob {namespace}/{name} with spec.suspend=true", flush=True)
    return name


def suspended_condition(job: dict[str, Any]) -> dict[str, Any] | None:
    """The job's ``Suspended`` condition when it is ``True``."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Suspended" and condition.get("status") == "True":
            return dict(condition)
    return None


def wait_suspended(path: str, timeout: float, operator: str) -> dict[str, Any]:
    """Poll the job until the operator sets ``Suspended=True``; the condition."""
    deadline = time.monotonic() + timeout
    while True:
        status, job = call("GET", path)
        if status != 200:
            raise HookError(f"reading {path} failed: HTTP {status}: {job.get('message')}")
        condition = suspended_condition(job)
        if condition is not None:
            return condition
        if time.monotonic() > deadline:
            raise HookError(
                f"the operator did not mark the job Suspended within {timeout:.0f} s (status: "
                f"{json.dumps(job.get('status') or {})}); is the operator running and watching "
                f"this namespace? See its log: kubectl logs -n {operator}"
            )
        time.sleep(1)


def delete_and_wait(path: str, timeout: float) -> None:
    """Delete the job and wait until it is gone (the operator releases its finalizer)."""
    status, answer = call("DELETE", path)
    if status not in (200, 202, 404):
        raise HookError(f"deleting {path} failed: HTTP {status}: {answer.get('message')}")
    deadline = time.monotonic() + timeout
    while call("GET", path)[0] != 404:
        if time.monotonic() > deadline:
            raise HookError(
                f"{path} was still there {timeout:.0f} s after its deletion: the operator did "
                "not remove its finalizer (rekindle.dev/operator)"
            )
        time.sleep(1)


def run_test(namespace: str, image: str, timeout: float, operator: str) -> None:
    """Create, wait for Suspended, delete (also when the wait failed)."""
    name = create(namespace, image)
    path = f"{API_GROUP_PATH}/namespaces/{namespace}/trainingjobs/{name}"
    try:
        condition = wait_suspended(path, timeout, operator)
        reason, message = condition.get("reason"), condition.get("message")
        print(f"the operator marked it Suspended: {reason}: {message}", flush=True)
    finally:
        delete_and_wait(path, timeout)
    print(f"deleted {namespace}/{name}; the operator handles TrainingJobs")


def upgrade_crds(folder: str) -> None:
    """Update every CRD (``*.json``) in ``folder``."""
    files = sorted(Path(folder).glob("*.json"))
    if not files:
        raise HookError(f"no CRD (*.json) in {folder}")
    for file in files:
        print(upgrade(json.loads(file.read_text())), flush=True)


def main(argv: list[str]) -> int:
    """Run one hook; 1 with the reason when it fails, 2 on bad usage."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    hooks = parser.add_subparsers(dest="hook", required=True)
    crds = hooks.add_parser("upgrade-crds", help="replace the chart's CRDs' specs")
    crds.add_argument("folder", help="a folder of CRDs as JSON files")
    test = hooks.add_parser("test-trainingjob", help="a suspended job, Suspended, deleted")
    test.add_argument("--namespace", required=True, help="a namespace the operator watches")
    test.add_argument("--image", required=True, help="the job's image (never pulled)")
    test.add_argument("--timeout", type=float, default=120, help="seconds for each wait")
    test.add_argument(
        "--operator", default="NAMESPACE deployment/NAME", help="the operator, for messages"
    )
    args = parser.parse_args(argv)
    try:
        if args.hook == "upgrade-crds":
            upgrade_crds(args.folder)
        else:
            run_test(args.namespace, args.image, args.timeout, args.operator)
    except HookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
