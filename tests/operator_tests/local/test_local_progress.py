"""The live view of ``rekindle run``: reading the progress file, lines and bars."""

from __future__ import annotations

import io
from pathlib import Path

from rekindle_operator.local.console import Console
from rekindle_operator.local.progress import ProgressTail, ProgressView, format_logs
from rekindle_trainer.contract import ProgressEvent, ProgressKind


def _event(kind: ProgressKind, **data: object) -> ProgressEvent:
    return ProgressEvent(kind, 1.0, dict(data))


def test_tail_returns_only_complete_lines_and_each_once(tmp_path: Path) -> None:
    path = tmp_path / "progress.jsonl"
    tail = ProgressTail(path)
    assert tail.read() == []  # not created yet
    first = _event(ProgressKind.STEP, epoch=0, step=1).to_json()
    second = _event(ProgressKind.STEP, epoch=0, step=2).to_json()
    path.write_text(first + "\n" + second[:10])
    assert [e.data["step"] for e in tail.read()] == [1]
    with path.open("a") as stream:
        stream.write(second[10:] + "\n")
    assert [e.data["step"] for e in tail.read()] == [2]
    assert tail.read() == []


def test_tail_skips_malformed_lines(tmp_path: Path) -> None:
    path = tmp_path / "progress.jsonl"
    good = _event(ProgressKind.FINISHED, outcome="completed").to_json()
    path.write_text('not json\n{"kind": "teleported", "time": 1}\n\n' + good + "\n")
    tail = ProgressTail(path)
    assert [e.kind for e in tail.read()] == [ProgressKind.FINISHED]


def test_logs_show_loss_first_then_validation_metrics() -> None:
    logs = {"accuracy": 0.91234, "val_accuracy": 0.9, "val_loss": 0.2, "loss": 0.123456}
    assert format_logs(logs) == "loss 0.1235  val_loss 0.2  val_accuracy 0.9  accuracy 0.9123"
    assert format_logs(logs, limit=2) == "loss 0.1235  val_loss 0.2"
    assert format_logs({"loss": float("nan"), "note": "x", "flag": True}) == "loss nan"
    assert format_logs(None) == ""


def test_view_draws_a_bar_per_epoch_and_a_line_at_its_end() -> None:
    view = ProgressView()
    started = view.lines_for(
        _event(ProgressKind.STARTED, epoch=0, step=0, epochs=100, steps_per_epoch=8)
    )
    assert started == ["trainer started at epoch 0, step 0 (budget 100 epochs, 8 steps/epoch)"]
    assert view.bar() is None
    assert view.lines_for(_event(ProgressKind.STEP, epoch=0, step=4, logs={"loss": 0.5})) == []
    assert (
        view.bar()
        == "epoch   1/100  [############............] 4/8  loss 0.5  | 0 restarts, 0 saves"
    )
    lines = view.lines_for(
        _event(ProgressKind.EPOCH_END, epoch=1, step=8, logs={"loss": 0.4, "val_loss": 0.3})
    )
    assert lines == ["epoch   1/100  [########################] 8/8  loss 0.4  val_loss 0.3"]
    assert view.bar() is None
    view.lines_for(_event(ProgressKind.CHECKPOINT, checkpoint="c", epoch=1, step=8))
    view.lines_for(_event(ProgressKind.STEP, epoch=1, step=10, logs={"loss": 0.35}))
    assert (
        view.bar()
        == "epoch   2/100  [######..................] 2/8  loss 0.35  | 0 restarts, 1 save"
    )


def test_view_reports_resume_save_early_stop_and_end() -> None:
    view = ProgressView(epochs=20, steps_per_epoch=10)
    restored = view.lines_for(
        _event(
            ProgressKind.RESTORED,
            checkpoint="ckpt-000002-0000000020",
            epoch=2,
            step=20,
            lost_steps=7,
        )
    )
    assert restored == [
        "resumed from ckpt-000002-0000000020 (epoch 2, step 20); 7 steps lost, recomputed"
    ]
    view.lines_for(_event(ProgressKind.STEP, epoch=2, step=25))
    assert (view.bar() or "").startswith("epoch  3/20")
    saved = view.lines_for(
        _event(
            ProgressKind.CHECKPOINT,
            checkpoint="ckpt-000003-0000000030",
            epoch=3,
            step=30,
            seconds=0.125,
            bytes=2_500_000,
            trigger="epoch",
        )
    )
    assert saved == [
        "saved ckpt-000003-0000000030 (epoch 3, step 30; 0.12 s, 2.5 MB; trigger epoch)"
    ]
    assert view.lines_for(_event(ProgressKind.EARLY_STOPPED, epoch=9, best_metric=0.0831)) == [
        "early stopping fired at epoch 9 (best 0.0831)"
    ]
    assert view.lines_for(_event(ProgressKind.FINISHED, outcome="early_stopped")) == [
        "trainer finished: early_stopped"
    ]


def test_the_bar_tallies_the_attempt_restarts_and_saves() -> None:
    view = ProgressView(epochs=20, steps_per_epoch=10, attempt=3, restarts=1, saves=4)
    view.lines_for(_event(ProgressKind.RESTORED, checkpoint="c", epoch=2, step=20))
    view.lines_for(_event(ProgressKind.STEP, epoch=2, step=25, logs={"val_loss": 1, "loss": 2}))
    bar = view.bar()
    assert (
        bar
        == "epoch  3/20  [############............]  5/10  loss 2  | attempt 3, 1 restart, 4 saves"
    )
    view.lines_for(_event(ProgressKind.CHECKPOINT, checkpoint="d", epoch=2, step=25))
    assert view.saves == 5


def test_view_without_steps_per_epoch_counts_steps() -> None:
    view = ProgressView()
    view.lines_for(_event(ProgressKind.STARTED, epoch=0, step=0, epochs=5, steps_per_epoch=None))
    view.lines_for(_event(ProgressKind.STEP, epoch=0, step=3))
    assert view.bar() == "epoch 1/5  step 3  | 0 restarts, 0 saves"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_console_on_a_terminal_keeps_the_bar_below_the_lines() -> None:
    stream = _Terminal()
    console = Console.for_stream(stream)
    assert console.live
    console.bar("epoch 1 [##..]")
    console.line("saved ckpt")
    console.bar("epoch 1 [###.]")
    console.close()
    assert stream.getvalue() == (
        "\r\x1b[Kepoch 1 [##..]\r\x1b[Ksaved ckpt\nepoch 1 [##..]\r\x1b[Kepoch 1 [###.]\r\x1b[K"
    )


def test_console_elsewhere_writes_plain_lines_only() -> None:
    stream = io.StringIO()
    console = Console.for_stream(stream)
    assert not console.live
    console.bar("epoch 1 [##..]")
    console.line("saved ckpt")
    console.close()
    assert stream.getvalue() == "saved ckpt\n"


def test_console_with_progress_off_draws_no_bar_on_a_terminal() -> None:
    assert not Console.for_stream(_Terminal(), progress=False).live


def test_the_started_line_says_when_no_valid_checkpoint_was_left() -> None:
    note = (
        "no valid checkpoint in /w/ckpt: ckpt-000003-0000000069 corrupt (…); starting from epoch 0"
    )
    started = ProgressView().lines_for(
        _event(ProgressKind.STARTED, epoch=0, step=0, epochs=3, steps_per_epoch=23, note=note)
    )
    assert started == ["trainer started at epoch 0, step 0 (budget 3 epochs, 23 steps/epoch)", note]
