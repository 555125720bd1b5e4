"""The scenario manifests: ``examples/digits.yaml`` as a user applies it, sized for a test run.

Every scenario starts from the example a user would apply and changes only
what makes it fit the suite's time budget or what the scenario is about:
a larger learning rate and a smaller epoch budget (early stopping then fires
around epoch 18 instead of 48), a one-second backoff, a short grace period,
and for some scenarios a user's own claim, a failing command or a missing
entrypoint. Pure: returns plain dicts.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DIGITS = REPO / "examples" / "digits.yaml"
GANG = REPO / "examples" / "digits-2workers.yaml"

#: What every scenario changes in the example (see the module docstring).
FAST: dict[str, Any] = {
    "training": {"epochs": 40, "hyperparameters": {"learningRate": 0.006}},
    "earlyStopping": {"minDelta": 0.002},
    "restartPolicy": {"maxRestarts": 3, "backoff": {"initialSeconds": 1, "maxSeconds": 4}},
    "terminationGracePeriodSeconds": 30,
}


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` merged into a copy of ``base`` (dicts recursively; None removes a key)."""
    result = copy.deepcopy(dict(base))
    for key, value in over.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def digits(name: str, image: str, **spec: Any) -> dict[str, Any]:
    """The digits example named ``name``, with the trainer ``image``, FAST, then ``spec``."""
    manifest: dict[str, Any] = yaml.safe_load(DIGITS.read_text())
    manifest["metadata"] = {"name": name}
    manifest["spec"] = merge(merge(manifest["spec"], FAST), {"image": image, **spec})
    return manifest


#: What the gang scenarios change in ``examples/digits-2workers.yaml``: a small model and a
#: large global batch (23 steps per epoch), a checkpoint every 5 steps (each fault lands right
#: after one its attempt wrote, often mid-epoch), a loose early stop (the reference stops at
#: epoch 4-6), and a short backoff. Each attempt is a gang of two TensorFlow processes, whose
#: start dominates the run's time.
GANG_FAST: dict[str, Any] = {
    "training": {
        "epochs": 12,
        "batchSize": 64,
        "seed": 5,
        "hyperparameters": {"units": 16, "learningRate": 0.01, "dropout": 0.2},
    },
    "checkpoint": {"everySteps": 5, "keep": 3, "storageClassName": None},
    "earlyStopping": {"patience": 1, "minDelta": 0.03},
    "restartPolicy": {"maxRestarts": 3, "backoff": {"initialSeconds": 1, "maxSeconds": 4}},
    "terminationGracePeriodSeconds": 30,
}


def gang(name: str, image: str, **spec: Any) -> dict[str, Any]:
    """The two-worker digits example named ``name``, GANG_FAST, then ``spec``.

    The example's storage class (``nfs-client``) is removed: the cluster's default class
    is used unless ``spec`` names one (a real cluster needs one with ReadWriteMany).
    """
    manifest: dict[str, Any] = yaml.safe_load(GANG.read_text())
    manifest["metadata"] = {"name": name}
    manifest["spec"] = merge(merge(manifest["spec"], GANG_FAST), {"image": image, **spec})
    return manifest


def crash_loop(
    name: str, image: str, *, max_restarts: int, backoff: Mapping[str, Any]
) -> dict[str, Any]:
    """A job whose program fails at once every time (the user's own ``command``)."""
    program = (
        "import sys; print('Traceback: RuntimeError: CUDA error: an illegal memory access', "
        "file=sys.stderr); sys.exit(1)"
    )
    return digits(
        name,
        image,
        entrypoint=None,
        command=["python3", "-c", program],
        restartPolicy={"maxRestarts": max_restarts, "backoff": dict(backoff)},
    )


def backoff_delays(max_restarts: int, backoff: Mapping[str, Any]) -> list[float]:
    """The delay before each restart: ``min(initial * factor**(n-1), max)`` for failure n."""
    initial = float(backoff["initialSeconds"])
    factor = float(backoff.get("factor", 2.0))
    ceiling = float(backoff["maxSeconds"])
    return [min(initial * factor ** (n - 1), ceiling) for n in range(1, max_restarts + 1)]


def user_claim(name: str, size: str = "1Gi") -> dict[str, Any]:
    """A PersistentVolumeClaim the user creates (and owns) for checkpoints."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}},
    }
