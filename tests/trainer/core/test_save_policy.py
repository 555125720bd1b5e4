"""The save triggers by table: which save fires after a step and at an epoch's end."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from rekindle_trainer import contract
from rekindle_trainer.contract.training_config import CheckpointPolicy, EarlyStopping, TrainerConfig
from rekindle_trainer.core.save_policy import SavePolicy, supersedable

EPOCHS = CheckpointPolicy(every_epochs=2, every_steps=0)
STEPS = CheckpointPolicy(every_epochs=0, every_steps=5)
SECONDS = CheckpointPolicy(every_epochs=0, every_seconds=30)
ALL = CheckpointPolicy(every_epochs=1, every_steps=5, every_seconds=30)
NONE = CheckpointPolicy(every_epochs=0)


@dataclass(frozen=True)
class StepCase:
    policy: CheckpointPolicy
    step: int
    expect: str | None
    ends_epoch: bool = False
    stop_requested: bool = False
    seconds: float = 0.0


STEP_CASES = {
    "every 5 steps: step 10": StepCase(STEPS, 10, "steps"),
    "every 5 steps: step 11": StepCase(STEPS, 11, None),
    "every 30 s: 29.9 s since the last save": StepCase(SECONDS, 7, None, seconds=29.9),
    "every 30 s: 30 s since the last save": StepCase(SECONDS, 7, "seconds", seconds=30.0),
    "steps come before seconds": StepCase(ALL, 10, "steps", seconds=99.0),
    "sigterm before any periodic save": StepCase(ALL, 10, "sigterm", stop_requested=True),
    "sigterm with no periodic saves": StepCase(NONE, 3, "sigterm", stop_requested=True),
    "nothing configured": StepCase(NONE, 10, None, seconds=1e9),
    "an epoch's last step leaves it to the epoch end": StepCase(
        ALL, 10, None, ends_epoch=True, stop_requested=True, seconds=99.0
    ),
    "every_epochs alone never fires after a step": StepCase(EPOCHS, 2, None),
}


@pytest.mark.parametrize("name", STEP_CASES)
def test_trigger_after_a_step(name: str) -> None:
    case = STEP_CASES[name]
    got = SavePolicy(case.policy).after_step(
        case.step,
        ends_epoch=case.ends_epoch,
        stop_requested=case.stop_requested,
        seconds_since_save=case.seconds,
    )
    assert got == case.expect


@dataclass(frozen=True)
class EpochCase:
    policy: CheckpointPolicy
    epochs_done: int
    expect: str | None
    step: int = 7
    save_best: bool = False
    facts: dict[str, Any] = field(default_factory=dict)


EPOCH_CASES = {
    "every 2 epochs: epoch 4 done": EpochCase(EPOCHS, 4, "epoch"),
    "every 2 epochs: epoch 3 done": EpochCase(EPOCHS, 3, None),
    "every epoch wins over steps and seconds": EpochCase(
        ALL, 3, "epoch", step=10, facts={"seconds_since_save": 99.0}
    ),
    "an epoch end at a step multiple saves as steps": EpochCase(STEPS, 3, "steps", step=15),
    "an epoch end past the interval saves as seconds": EpochCase(
        SECONDS, 3, "seconds", facts={"seconds_since_save": 31.0}
    ),
    "the best epoch is saved for restoreBestWeights": EpochCase(
        NONE, 3, "epoch", save_best=True, facts={"improved": True}
    ),
    "an improvement alone saves nothing without restoreBestWeights": EpochCase(
        NONE, 3, None, facts={"improved": True}
    ),
    "restoreBestWeights: a worse epoch is not saved": EpochCase(NONE, 3, None, save_best=True),
    "sigterm saves at the epoch end": EpochCase(NONE, 3, "sigterm", facts={"stop_requested": True}),
    "sigterm comes before the epoch save": EpochCase(
        ALL, 2, "sigterm", facts={"stop_requested": True}
    ),
    "early stopping saves nothing here (the final save follows)": EpochCase(
        ALL, 2, None, step=10, save_best=True, facts={"stopping": True, "improved": True}
    ),
    "early stopping wins over sigterm": EpochCase(
        ALL, 2, None, facts={"stopping": True, "stop_requested": True}
    ),
}


@pytest.mark.parametrize("name", EPOCH_CASES)
def test_trigger_at_an_epoch_end(name: str) -> None:
    case = EPOCH_CASES[name]
    facts: dict[str, Any] = {
        "improved": False,
        "stopping": False,
        "stop_requested": False,
        "seconds_since_save": 0.0,
        **case.facts,
    }
    policy = SavePolicy(case.policy, save_best=case.save_best)
    assert policy.at_epoch_end(case.epochs_done, case.step, **facts) == case.expect


def test_every_trigger_fired_is_one_the_contract_names() -> None:
    fired = {c.expect for c in STEP_CASES.values()} | {c.expect for c in EPOCH_CASES.values()}
    assert fired - {None} <= set(contract.SAVE_TRIGGERS)


@pytest.mark.parametrize(
    ("trigger", "expect"),
    [("steps", True), ("seconds", True), ("epoch", False), ("sigterm", False), ("final", False)],
)
def test_only_periodic_saves_may_be_superseded(trigger: str, expect: bool) -> None:
    assert supersedable(trigger) is expect


def test_the_policy_reads_the_checkpoint_section_and_restore_best_weights() -> None:
    config = TrainerConfig(
        epochs=10,
        checkpoint=STEPS,
        early_stopping=EarlyStopping(monitor="loss", restore_best_weights=True),
    )
    assert SavePolicy.of(config) == SavePolicy(STEPS, save_best=True)
