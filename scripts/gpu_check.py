"""Check the trainer on this machine's accelerators: strategy, replicas, speed, exact resume.

For each placement and precision it runs the trainer (``rekindle-train``'s own
session, a fresh process each time) three times on the same configuration:
uninterrupted; killed with SIGKILL part-way; resumed to the end. It reports
what TensorFlow saw (devices, strategy, replicas, dtype policy), training steps
per second, and whether the resumed run ended with the same weights, bit for
bit, at the same step and early-stopping epoch as the uninterrupted one.

Placements:

* ``all-gpus``: every visible GPU (``MirroredStrategy`` when there are several);
* ``2-logical-gpus`` (one GPU only): that GPU split into two logical GPUs with a
  memory limit each (``tf.config.set_logical_device_configuration``), so that the
  mirrored path runs on a single card;
* ``2-logical-cpus`` (no GPU): the CPU split in two (``REKINDLE_CPU_REPLICAS=2``).

Each with ``float32`` and ``mixed_float16``. Then the gang case (#15): ``rekindle
run`` trains a two-worker job (two processes on this machine, sharing its GPUs,
under ``MultiWorkerMirroredStrategy``) uninterrupted, and again with worker 1
SIGKILLed mid-epoch; the resumed gang must end with bitwise the same weights at
the same early-stop epoch. Both workers see every GPU, so their collectives run
over gRPC (``REKINDLE_COLLECTIVE=ring``: NCCL needs one rank per GPU) and each
grows its GPU memory as needed (``TF_FORCE_GPU_ALLOW_GROWTH``). ``--no-gang``
skips it. Usage::

    python scripts/gpu_check.py result.json [--epochs 8] [--work DIR]

It prints a table and writes the JSON; the exit code is 0 when every resumed run
matched its uninterrupted run, else 1. Needs ``pip install .[trainer]`` (with a
TensorFlow GPU build where there are GPUs).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from rekindle_trainer import contract
from rekindle_trainer.checkpoint.store import CheckpointStore
from rekindle_trainer.contract import ProgressEvent, ProgressKind, TerminationMessage

PRECISIONS: Final = ("float32", "mixed_float16")
#: Where the child process writes what TensorFlow showed it.
ENV_INFO: Final = "GPU_CHECK_INFO"
RUN_TIMEOUT: Final = 600.0


@dataclass(frozen=True)
class Placement:
    """Where a run trains: extra environment and how many logical GPUs to split GPU 0 into."""

    name: str
    env: dict[str, str] = field(default_factory=dict)
    split_gpu: int = 0


def placements(gpus: int) -> list[Placement]:
    """The placements worth checking with ``gpus`` physical GPUs visible."""
    if gpus == 0:
        return [Placement("2-logical-cpus", {contract.ENV_CPU_REPLICAS: "2"})]
    found = [Placement("all-gpus")]
    if gpus == 1:
        found.append(Placement("2-logical-gpus", split_gpu=2))
    return found


def document(epochs: int, batch_size: int, precision: str) -> dict[str, Any]:
    """The trainer configuration of every run: digits, early stopping, frequent saves."""
    return {
        "entrypoint": "rekindle_trainer.examples.digits:build",
        "epochs": epochs,
        "batchSize": batch_size,
        "seed": 11,
        "mixedPrecision": precision == "mixed_float16",
        "hyperparameters": {"units": 64, "learningRate": 0.005},
        "checkpoint": {"everyEpochs": 1, "everySteps": 7, "keep": 3},
        "earlyStopping": {"monitor": "val_loss", "patience": 1, "minDelta": 0.005},
    }


# ----------------------------------------------------------------- the child


def child(split_gpu: int, memory_mb: int) -> int:
    """One trainer attempt, after splitting GPU 0 if asked; writes what it saw to ENV_INFO."""
    import tensorflow as tf  # noqa: PLC0415 - the parent never initialises a device

    gpus = tf.config.list_physical_devices("GPU")
    if split_gpu > 1 and gpus:
        tf.config.set_logical_device_configuration(
            gpus[0],
            [tf.config.LogicalDeviceConfiguration(memory_limit=memory_mb)] * split_gpu,
        )
    import keras  # noqa: PLC0415

    from rekindle_trainer.training.session import session  # noqa: PLC0415
    from rekindle_trainer.training.setup import check_setup, load_entrypoint  # noqa: PLC0415

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    info_path = Path(os.environ[ENV_INFO])
    with session(require_entrypoint=True) as run:
        if run.message is None:
            assert run.config.entrypoint is not None
            strategy = run.strategy
            build = load_entrypoint(run.config.entrypoint)
            with strategy.scope():
                setup = check_setup(build(run.config), run.config.entrypoint)
            model = setup.model
            info = {
                "tensorflow": tf.__version__,
                "keras": keras.__version__,
                "physical_gpus": [d.name for d in gpus],
                "logical_gpus": [d.name for d in tf.config.list_logical_devices("GPU")],
                "logical_cpus": [d.name for d in tf.config.list_logical_devices("CPU")],
                "strategy": type(strategy).__name__,
                "replicas": int(strategy.num_replicas_in_sync),
                "devices": list(strategy.extended.worker_devices),
                "dtype_policy": keras.mixed_precision.global_policy().name,
                "compute_dtype": str(model.layers[0].compute_dtype),
                "variable_dtype": str(model.layers[0].variable_dtype),
                "optimizer": type(model.optimizer).__name__,
            }
            info_path.write_text(json.dumps(info))
            run.run(setup)
    return run.exit_code


# ---------------------------------------------------------------- the parent


@dataclass
class Result:
    """What one placement and precision showed."""

    placement: str
    precision: str
    info: dict[str, Any] = field(default_factory=dict)
    steps: int = 0
    epoch: int = 0
    early_stop_epoch: int | None = None
    steps_per_second: float | None = None
    seconds: float = 0.0
    killed_at_step: int | None = None
    resumed_from_step: int | None = None
    lost_steps: int | None = None
    resumed_step_matches: bool = False
    resumed_early_stop_matches: bool = False
    resumed_weights_match: bool = False
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Everything matched and nothing failed."""
        return (
            self.error is None
            and self.resumed_weights_match
            and self.resumed_step_matches
            and self.resumed_early_stop_matches
        )


class Runner:
    """Starts child processes for one placement and precision in its own folder."""

    def __init__(self, work: Path, placement: Placement, doc: dict[str, Any], memory_mb: int):
        self.work, self.placement, self.doc, self.memory_mb = work, placement, doc, memory_mb

    def env(self, folder: Path, attempt: int) -> dict[str, str]:
        """The child's environment: the contract's variables plus the placement's."""
        folder.mkdir(parents=True, exist_ok=True)
        return {
            **os.environ,
            "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
            contract.ENV_CONFIG: json.dumps(self.doc),
            contract.ENV_CHECKPOINT_DIR: str(folder / "ckpt"),
            contract.ENV_ATTEMPT: str(attempt),
            contract.ENV_METRICS_PORT: "0",
            contract.ENV_TERMINATION_LOG: str(folder / f"termination-{attempt}.json"),
            contract.ENV_PROGRESS_FILE: str(folder / "progress.jsonl"),
            ENV_INFO: str(folder / f"info-{attempt}.json"),
            **self.placement.env,
        }

    def start(self, folder: Path, attempt: int) -> subprocess.Popen[bytes]:
        """Start one attempt; its log goes to ``attempt-N.log`` in ``folder``."""
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            "--split-gpu",
            str(self.placement.split_gpu),
            "--gpu-memory-mb",
            str(self.memory_mb),
        ]
        env = self.env(folder, attempt)
        with (folder / f"attempt-{attempt}.log").open("wb") as log:
            return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)

    def finish(self, folder: Path, attempt: int) -> TerminationMessage:
        """Run one attempt to its end; raise with the log's tail if it failed."""
        process = self.start(folder, attempt)
        code = process.wait(timeout=RUN_TIMEOUT)
        if code != 0:
            raise RuntimeError(f"attempt {attempt} exited {code}:\n{tail(folder, attempt)}")
        return TerminationMessage.from_json((folder / f"termination-{attempt}.json").read_text())


def tail(folder: Path, attempt: int, lines: int = 15) -> str:
    """The end of an attempt's log."""
    path = folder / f"attempt-{attempt}.log"
    return (
        "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""
    )


def events(folder: Path) -> list[ProgressEvent]:
    """The complete lines of the progress file."""
    path = folder / "progress.jsonl"
    if not path.exists():
        return []
    return [ProgressEvent.from_json(line) for line in path.read_text().split("\n")[:-1] if line]


def reached(folder: Path) -> int:
    """The highest global step reported so far."""
    return max(
        (
            int(e.data["step"])
            for e in events(folder)
            if e.kind in (ProgressKind.STEP, ProgressKind.EPOCH_END)
        ),
        default=0,
    )


def steps_per_second(folder: Path) -> float | None:
    """Training speed between the first and the last epoch end (the first epoch traces)."""
    ends = [e for e in events(folder) if e.kind is ProgressKind.EPOCH_END]
    if len(ends) < 2 or ends[-1].time <= ends[0].time:
        return None
    return (int(ends[-1].data["step"]) - int(ends[0].data["step"])) / (ends[-1].time - ends[0].time)


def final_weights(folder: Path) -> list[bytes]:
    """The model arrays of the newest checkpoint, as bytes."""
    loaded, _ = CheckpointStore(folder / "ckpt").latest_valid()
    if loaded is None:
        raise RuntimeError(f"no valid checkpoint in {folder / 'ckpt'}")
    return [array.tobytes() for _, array in loaded.groups["model"]]


def check(runner: Runner, result: Result) -> None:
    """Uninterrupted run, a SIGKILL part-way, the resume; fill ``result``."""
    ref = runner.work / "uninterrupted"
    started = time.monotonic()
    message = runner.finish(ref, 1)
    result.seconds = round(time.monotonic() - started, 2)
    result.info = json.loads((ref / "info-1.json").read_text())
    result.steps, result.epoch = message.step, message.epoch
    result.early_stop_epoch = message.early_stop_epoch
    speed = steps_per_second(ref)
    result.steps_per_second = None if speed is None else round(speed, 2)

    killed = runner.work / "killed"
    target = max(1, int(message.step * 0.4))
    process = runner.start(killed, 1)
    deadline = time.monotonic() + RUN_TIMEOUT
    while reached(killed) < target and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    if process.poll() is not None:
        raise RuntimeError(f"the run to kill ended first:\n{tail(killed, 1)}")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    result.killed_at_step = reached(killed)
    resumed = runner.finish(killed, 2)
    restored = [e.data for e in events(killed) if e.kind is ProgressKind.RESTORED]
    if restored:
        result.resumed_from_step = int(restored[-1]["step"])
        result.lost_steps = int(restored[-1]["lost_steps"])
    result.resumed_step_matches = resumed.step == message.step
    result.resumed_early_stop_matches = resumed.early_stop_epoch == message.early_stop_epoch
    result.resumed_weights_match = final_weights(killed) == final_weights(ref)


#: The gang case's job (the e2e gang scenarios' digits settings), for ``rekindle run``.
GANG_SPEC: Final[dict[str, Any]] = {
    "image": "local",
    "entrypoint": "rekindle_trainer.examples.digits:build",
    "workers": 2,
    "training": {
        "epochs": 12,
        "batchSize": 64,
        "seed": 5,
        "hyperparameters": {"units": 16, "learningRate": 0.01, "dropout": 0.2},
    },
    "checkpoint": {"everyEpochs": 1, "everySteps": 5, "keep": 3},
    "earlyStopping": {"monitor": "val_loss", "patience": 1, "minDelta": 0.03},
    "restartPolicy": {"maxRestarts": 3, "backoff": {"initialSeconds": 1, "maxSeconds": 4}},
}
#: Worker 1 SIGKILLed mid-epoch 2 (23 steps an epoch).
GANG_FAULT: Final = "sigkill@step=30,worker=1"


def run_gang(work: Path, name: str, faults: tuple[str, ...]) -> tuple[dict[str, Any], list[bytes]]:
    """``rekindle run`` of the gang job to its end: the chief's last message and final weights."""
    work.mkdir(parents=True, exist_ok=True)
    job: dict[str, Any] = {"apiVersion": "rekindle.dev/v1alpha1", "kind": "TrainingJob"}
    job |= {"metadata": {"name": name}, "spec": GANG_SPEC}
    manifest = work / f"{name}.yaml"
    manifest.write_text(json.dumps(job))  # JSON is YAML
    command = [sys.executable, "-m", "rekindle_operator.cli", "run", str(manifest)]
    command += ["--workdir", str(work / name), "--fresh", "--no-progress", "--metrics-port", "0"]
    for fault in faults:
        command += ["--inject", fault]
    repo = Path(__file__).resolve().parents[1]
    path = os.pathsep.join([str(repo / "operator"), str(repo / "trainer_image")])
    env = {**os.environ, "PYTHONPATH": path, "REKINDLE_COLLECTIVE": "ring"}
    env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT * 3, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"rekindle run {name} exited {done.returncode}:\n{done.stdout[-2000:]}")
    attempts = sorted((work / name / "attempts").iterdir())
    message = json.loads((attempts[-1] / "w0" / "termination-log").read_text())
    message["attempts"] = len(attempts)
    loaded, _ = CheckpointStore(work / name / "checkpoints").latest_valid()
    if loaded is None:
        raise RuntimeError(f"no valid checkpoint of {name}")
    return message, [array.tobytes() for _, array in loaded.groups["model"]]


def gang_check(work: Path) -> dict[str, Any]:
    """The gang case (see the module docstring): its figures and ``ok``."""
    try:
        started = time.monotonic()
        reference, weights = run_gang(work, "gang", ())
        seconds = round(time.monotonic() - started, 1)
        faulted, resumed = run_gang(work, "gang-killed", (GANG_FAULT,))
    except Exception as exc:  # reported in the JSON; the exit code says it failed
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    keys = ("early_stop_epoch", "best_epoch", "best_metric", "step")
    same = all(reference.get(k) == faulted.get(k) for k in keys)
    return {
        "ok": same and weights == resumed and faulted["attempts"] == 2,
        "seconds": seconds,
        "fault": GANG_FAULT,
        "attempts": faulted["attempts"],
        "weights_match": weights == resumed,
        "reference": {k: reference.get(k) for k in keys},
        "resumed": {k: faulted.get(k) for k in keys},
    }


def physical_gpus() -> list[str]:
    """Physical GPUs TensorFlow sees (listing them initialises no device)."""
    import tensorflow as tf  # noqa: PLC0415

    return [d.name for d in tf.config.list_physical_devices("GPU")]


def table(results: list[Result]) -> str:
    """A plain-text summary, one line per run."""
    head = (
        f"{'placement':<16} {'precision':<14} {'strategy':<18} {'replicas':>8} "
        f"{'steps/s':>9} {'steps':>6} {'killed@':>8} {'resumed@':>9} {'match':>6}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(
            f"{r.placement:<16} {r.precision:<14} {r.info.get('strategy', '?'):<18} "
            f"{r.info.get('replicas', '?')!s:>8} {r.steps_per_second!s:>9} {r.steps:>6} "
            f"{r.killed_at_step!s:>8} {r.resumed_from_step!s:>9} {str(r.ok).lower():>6}"
        )
        if r.error:
            lines.append(f"  error: {r.error.splitlines()[0]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments; run the child, or every check and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("result", nargs="?", type=Path, help="where to write the JSON")
    parser.add_argument("--epochs", type=int, default=8, help="epoch budget (default 8)")
    parser.add_argument("--batch-size", type=int, default=64, help="global batch (default 64)")
    parser.add_argument("--work", type=Path, help="folder for the runs (default: a temp dir)")
    parser.add_argument(
        "--gpu-memory-mb", type=int, default=4096, help="memory of each logical GPU (4096)"
    )
    parser.add_argument("--no-gang", action="store_true", help="skip the two-worker gang case")
    parser.add_argument("--only-gang", action="store_true", help="run only the gang case")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--split-gpu", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.split_gpu, args.gpu_memory_mb)
    if args.result is None:
        parser.error("the result path is required")
    if args.epochs < 1 or args.batch_size < 2:
        parser.error("--epochs must be >= 1 and --batch-size >= 2")
    work = args.work or Path(tempfile.mkdtemp(prefix="rekindle-gpu-check-"))
    gpus = physical_gpus()
    results: list[Result] = []
    for placement in [] if args.only_gang else placements(len(gpus)):
        for precision in PRECISIONS:
            result = Result(placement.name, precision)
            doc = document(args.epochs, args.batch_size, precision)
            runner = Runner(
                work / f"{placement.name}-{precision}", placement, doc, args.gpu_memory_mb
            )
            try:
                check(runner, result)
            except Exception as exc:  # reported, and the other checks still run
                result.error = f"{type(exc).__name__}: {exc}"
            results.append(result)
            print(f"{placement.name} {precision}: {'ok' if result.ok else 'FAILED'}", flush=True)
    gang = None if args.no_gang else gang_check(work / "gang")
    if gang is not None:
        print(f"gang (2 workers, worker 1 SIGKILLed): {'ok' if gang['ok'] else 'FAILED'}")
    report = {
        "physical_gpus": gpus,
        "gang": gang,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "work": str(work),
        "ok": all(r.ok for r in results) and (gang is None or bool(gang["ok"])),
        "runs": [{**asdict(r), "ok": r.ok} for r in results],
    }
    args.result.parent.mkdir(parents=True, exist_ok=True)
    args.result.write_text(json.dumps(report, indent=2) + "\n")
    if results:
        print(table(results))
    print(f"written to {args.result}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
