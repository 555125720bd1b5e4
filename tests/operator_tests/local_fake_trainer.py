"""A stand-in trainer for the local runner's tests: the contract without TensorFlow.

It honours ``docs/contract.md`` as ``rekindle-train`` does, on a toy "model"
whose validation loss is a fixed function of the epoch, so that the epoch at
which early stopping fires is known and the same however often the process is
killed: it reads ``REKINDLE_CONFIG``, resumes from the newest checkpoint in
``REKINDLE_CHECKPOINT_DIR`` (published by atomic rename, with a manifest),
appends progress events, saves and exits 143 on SIGTERM, and writes the
termination message.

Hyperparameters it reads: ``bestEpoch`` (where ``val_loss`` is lowest),
``stepSeconds`` (time per step), ``invalid`` (exit 2 at once, as a bad
configuration would), ``freezeAtStep`` (in attempt 1 only: SIGSTOP itself after
that global step, as a trainer frozen entirely).

As a worker of a gang (``TF_CONFIG``, see :mod:`rekindle_trainer.contract.gang`)
it follows the contract's chief rule: every worker restores the newest
checkpoint and trains the same steps, but only the chief (worker 0) publishes
checkpoints and reports progress in its termination message; the others write
no checkpoint and end with their outcome alone (a SIGTERM: exit 143, nothing
saved). It does not talk to its peers: the gang rules that stop the others
are the runner's and the operator's, which is what these tests exercise.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from rekindle_trainer import contract
from rekindle_trainer.contract import Outcome, ProgressEvent, ProgressKind, TerminationMessage, gang

_stop = {"requested": False}


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    del signum, frame
    _stop["requested"] = True


def val_loss(epoch: int, best_epoch: int) -> float:
    """The toy validation loss after 1-based ``epoch``: lowest at ``best_epoch``."""
    return 0.1 + 0.01 * (epoch - best_epoch) ** 2


class Fake:
    def __init__(self) -> None:
        self.config: dict[str, Any] = json.loads(os.environ[contract.ENV_CONFIG])
        self.ckpt_dir = Path(os.environ[contract.ENV_CHECKPOINT_DIR])
        self.term_log = Path(os.environ[contract.ENV_TERMINATION_LOG])
        self.chief = gang.worker_role(os.environ).is_chief
        progress = os.environ.get(contract.ENV_PROGRESS_FILE)
        self.progress = Path(progress) if progress else None
        hp = self.config.get("hyperparameters") or {}
        self.best_epoch = int(hp.get("bestEpoch", 4))
        self.step_seconds = float(hp.get("stepSeconds", 0.005))
        self.invalid = bool(hp.get("invalid", False))
        freeze = hp.get("freezeAtStep")
        first = os.environ.get(contract.ENV_ATTEMPT) == "1"
        self.freeze_at = int(freeze) if freeze is not None and first else None
        self.epochs = int(self.config["epochs"])
        self.steps_per_epoch = int(self.config.get("stepsPerEpoch") or 10)
        es = self.config.get("earlyStopping") or {}
        self.es_enabled = bool(es.get("enabled", True))
        self.patience = int(es.get("patience", 0))
        self.state: dict[str, Any] = {
            "epoch": 0,
            "step": 0,
            "best": None,
            "best_epoch": None,
            "wait": 0,
        }
        self.checkpoint: str | None = None

    def emit(self, kind: ProgressKind, **data: Any) -> None:
        if self.progress is None:
            return
        with self.progress.open("a") as stream:
            stream.write(ProgressEvent(kind, time.time(), data).to_json() + "\n")

    def finish(self, outcome: Outcome, error: str | None = None, **extra: Any) -> int:
        if not self.chief:  # the chief alone reports training
            message = TerminationMessage(outcome=outcome, error=error)
            self.term_log.write_text(message.to_json())
            return contract.EXIT_CODE_FOR_OUTCOME[outcome]
        message = TerminationMessage(
            outcome=outcome,
            epoch=self.state["epoch"],
            step=self.state["step"],
            best_metric=self.state["best"],
            monitor="val_loss",
            best_epoch=self.state["best_epoch"],
            checkpoint=self.checkpoint,
            error=error,
            **extra,
        )
        self.term_log.write_text(message.to_json())
        self.emit(ProgressKind.FINISHED, outcome=outcome.value)
        return contract.EXIT_CODE_FOR_OUTCOME[outcome]

    def save(self, trigger: str) -> None:
        if not self.chief:  # the chief alone publishes checkpoints
            return
        name = contract.checkpoint_name(self.state["epoch"], self.state["step"])
        final = self.ckpt_dir / name
        if final.exists():
            return
        temporary = self.ckpt_dir / f"{contract.TEMP_PREFIX}{name}"
        temporary.mkdir(parents=True, exist_ok=True)
        manifest = {"format": contract.MANIFEST_FORMAT_VERSION, "state": self.state}
        (temporary / contract.MANIFEST_NAME).write_text(json.dumps(manifest))
        temporary.rename(final)
        self.checkpoint = name
        for old in self.published()[:-3]:
            shutil.rmtree(old)
        self.emit(
            ProgressKind.CHECKPOINT,
            checkpoint=name,
            epoch=self.state["epoch"],
            step=self.state["step"],
            seconds=0.001,
            bytes=len(json.dumps(manifest)),
            trigger=trigger,
        )

    def published(self) -> list[Path]:
        if not self.ckpt_dir.exists():
            return []
        return sorted(
            p
            for p in self.ckpt_dir.iterdir()
            if p.name.startswith(contract.CHECKPOINT_PREFIX)
            and (p / contract.MANIFEST_NAME).exists()
        )

    def run(self) -> int:
        if self.invalid:
            return self.finish(Outcome.INVALID, error="hyperparameters.invalid: set by the test")
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        self.emit(
            ProgressKind.STARTED,
            epoch=0,
            step=0,
            epochs=self.epochs,
            steps_per_epoch=self.steps_per_epoch,
        )
        newest = self.published()
        if newest:
            manifest = json.loads((newest[-1] / contract.MANIFEST_NAME).read_text())
            self.state = manifest["state"]
            self.checkpoint = newest[-1].name
            self.emit(
                ProgressKind.RESTORED,
                checkpoint=self.checkpoint,
                epoch=self.state["epoch"],
                step=self.state["step"],
                lost_steps=0,
            )
        while self.state["epoch"] < self.epochs:
            epoch_index = self.state["epoch"]
            done_in_epoch = self.state["step"] - epoch_index * self.steps_per_epoch
            for _ in range(done_in_epoch, self.steps_per_epoch):
                if _stop["requested"]:
                    self.save("sigterm")
                    return self.finish(Outcome.PREEMPTED)
                time.sleep(self.step_seconds)
                self.state["step"] += 1
                self.emit(
                    ProgressKind.STEP,
                    epoch=epoch_index,
                    step=self.state["step"],
                    logs={"loss": 1.0 / self.state["step"]},
                )
                if self.state["step"] == self.freeze_at:
                    os.kill(os.getpid(), signal.SIGSTOP)
            epoch = epoch_index + 1
            loss = val_loss(epoch, self.best_epoch)
            self.state["epoch"] = epoch
            if self.state["best"] is None or loss < self.state["best"]:
                self.state["best"] = loss
                self.state["best_epoch"] = epoch
                self.state["wait"] = 0
            else:
                self.state["wait"] += 1
            self.emit(
                ProgressKind.EPOCH_END,
                epoch=epoch,
                step=self.state["step"],
                logs={"loss": loss * 2, "val_loss": loss},
            )
            stop = self.es_enabled and self.state["wait"] >= max(self.patience, 1)
            self.save("epoch")
            if stop:
                self.emit(ProgressKind.EARLY_STOPPED, epoch=epoch, best_metric=self.state["best"])
                return self.finish(Outcome.EARLY_STOPPED, early_stop_epoch=epoch)
        return self.finish(Outcome.COMPLETED)


def main() -> int:
    signal.signal(signal.SIGTERM, _on_sigterm)
    return Fake().run()


if __name__ == "__main__":
    sys.exit(main())
