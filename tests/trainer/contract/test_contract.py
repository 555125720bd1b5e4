"""The termination message: its schema, size limit and exit-code mapping."""

from __future__ import annotations

import json

import jsonschema
import pytest

from rekindle_trainer import contract
from rekindle_trainer.contract import Outcome, TerminationMessage


def test_round_trip_keeps_every_field() -> None:
    message = TerminationMessage(
        outcome=Outcome.EARLY_STOPPED,
        epoch=12,
        step=672,
        best_metric=0.083,
        monitor="val_loss",
        best_epoch=9,
        early_stop_epoch=12,
        checkpoint=contract.checkpoint_name(12, 672),
        replayable=True,
        lost_steps=3,
    )
    assert TerminationMessage.from_json(message.to_json()) == message


def test_serialized_message_validates_against_the_published_schema() -> None:
    text = TerminationMessage(outcome=Outcome.FAILED, epoch=1, step=2, error="boom").to_json()
    jsonschema.validate(json.loads(text), contract.TERMINATION_MESSAGE_SCHEMA)


def test_a_note_travels_and_is_left_out_when_there_is_none() -> None:
    """Operators before the field reject unknown keys: a message without a note has none."""
    plain = TerminationMessage(outcome=Outcome.COMPLETED, epoch=3, step=69)
    assert "note" not in json.loads(plain.to_json())
    noted = TerminationMessage(
        outcome=Outcome.COMPLETED, epoch=3, step=69, note="no valid checkpoint in /ckpt: …"
    )
    text = noted.to_json()
    jsonschema.validate(json.loads(text), contract.TERMINATION_MESSAGE_SCHEMA)
    assert TerminationMessage.from_json(text) == noted


def test_timing_travels_rounded_to_milliseconds_and_is_left_out_when_absent() -> None:
    """Goodput's input; operators before it reject unknown keys, so none is written without it."""
    plain = TerminationMessage(outcome=Outcome.PREEMPTED, epoch=3, step=69)
    assert "timing" not in json.loads(plain.to_json())
    timing = contract.Timing(
        startup=12.34567, restore=2.5, checkpoint_stall=0.25, training=100.0, steps=69
    )
    text = TerminationMessage(outcome=Outcome.PREEMPTED, epoch=3, step=69, timing=timing).to_json()
    jsonschema.validate(json.loads(text), contract.TERMINATION_MESSAGE_SCHEMA)
    assert json.loads(text)["timing"]["startup"] == 12.346
    parsed = TerminationMessage.from_json(text).timing
    assert parsed == contract.Timing(
        startup=12.346, restore=2.5, checkpoint_stall=0.25, training=100.0, steps=69
    )


@pytest.mark.parametrize(
    ("timing", "problem"),
    [
        ({"startup": -1}, "timing.startup: must be a finite number >= 0"),
        ({"steps": 1.5}, "timing.steps: expected an integer"),
        ({"restore": "2"}, "timing.restore: expected a number, got str"),
        ({"warmup": 1}, "timing.warmup: unknown field"),
        ([], "timing: expected an object"),
    ],
)
def test_a_bad_timing_is_refused_naming_the_field(timing: object, problem: str) -> None:
    text = json.dumps({"outcome": "preempted", "epoch": 1, "step": 2, "timing": timing})
    with pytest.raises(ValueError, match=problem.replace(".", r"\.")):
        TerminationMessage.from_json(text)


def test_long_error_is_truncated_to_the_kubernetes_limit() -> None:
    message = TerminationMessage(outcome=Outcome.FAILED, epoch=3, step=9, error="x" * 10_000)
    text = message.to_json()
    assert len(text.encode()) <= contract.TERMINATION_MESSAGE_MAX_BYTES
    parsed = TerminationMessage.from_json(text)
    assert parsed.epoch == 3
    assert parsed.error is not None
    assert parsed.error.endswith("[truncated]")


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"epoch": 1, "step": 1}, "outcome"),
        ({"outcome": "exploded", "epoch": 1, "step": 1}, "outcome"),
        ({"outcome": "failed", "epoch": -1, "step": 1}, "epoch"),
        ({"outcome": "failed", "epoch": 1, "step": 1, "surprise": 1}, "surprise"),
        ({"outcome": "failed", "epoch": True, "step": 1}, "epoch"),
    ],
)
def test_invalid_messages_name_the_field(doc: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        TerminationMessage.from_json(json.dumps(doc))
    # The hand-written validator and the JSON schema agree.
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, contract.TERMINATION_MESSAGE_SCHEMA)


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        (0, Outcome.COMPLETED),
        (2, Outcome.INVALID),
        (143, Outcome.PREEMPTED),
        (1, Outcome.FAILED),
        (137, Outcome.FAILED),
    ],
)
def test_exit_codes_map_to_outcomes(code: int, outcome: Outcome) -> None:
    assert contract.outcome_for_exit_code(code) == outcome


def test_checkpoint_names_sort_in_training_order() -> None:
    names = [contract.checkpoint_name(e, s) for e, s in [(0, 5), (1, 10), (2, 20), (10, 100)]]
    assert names == sorted(names)


def test_counters_end_in_total_and_names_are_unique() -> None:
    assert len(set(contract.TRAINER_METRICS)) == len(contract.TRAINER_METRICS)
    for name in contract.TRAINER_METRICS:
        assert name.startswith(contract.METRIC_PREFIX)
    assert contract.METRIC_CHECKPOINTS_SAVED.endswith("_total")
