"""The operator's reads of ``GET /progress``: where a pod answers, what is read, and when not."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from rekindle_operator.cluster.live import LiveReads, pod_address
from rekindle_operator.core.live_progress import LivePolicy, StallRule
from rekindle_trainer.contract.live import LiveProgress
from tests.support.progress_stub import ProgressStub

KEY = ("ml", "job")


def _pod(ip: str | None = "10.1.2.3", name: str = "job-1") -> dict[str, object]:
    status = {"podIP": ip} if ip else {}
    return {"metadata": {"namespace": "ml", "name": name}, "status": status}


def test_a_pod_is_reached_at_its_ip_and_the_metrics_port(tmp_path: Path) -> None:
    assert pod_address(_pod()) == "10.1.2.3:9102"
    assert pod_address(_pod("fd00::1")) == "[fd00::1]:9102"
    assert pod_address(_pod(None)) is None  # no IP yet: nothing to read
    (tmp_path / "ml").mkdir()
    (tmp_path / "ml" / "job-1").write_text("127.0.0.1:4000\n")
    assert pod_address(_pod(), tmp_path) == "127.0.0.1:4000"
    assert pod_address(_pod(name="job-2"), tmp_path) is None


def test_only_a_followed_attempt_is_read_and_a_frozen_one_stalls(tmp_path: Path) -> None:
    stub = ProgressStub(
        LiveProgress(
            attempt=1, epoch=2, step=20, steps_this_attempt=5, saves=3, save_seconds_p99=12.5
        )
    )
    stub.publish(tmp_path, "ml", "job-1")
    reads = LiveReads(LivePolicy(timeout_seconds=1), address_dir=tmp_path)

    async def scenario() -> None:
        assert reads.next_poll(KEY) is None  # not followed: never read
        assert not await reads.poll(KEY, 0.0)
        assert stub.reads == 0
        reads.follow(KEY, 1, _pod(), 0.0, StallRule(timeout_seconds=30, first_step_seconds=60))
        assert reads.next_poll(KEY) == 0.0
        assert await reads.poll(KEY, 0.0)  # the first reading: write it
        progress = reads.progress(KEY, 1)
        assert progress is not None
        assert (progress.epoch, progress.step) == (2, 20)
        assert reads.progress(KEY, 2) is None  # another attempt's reading is not this one's
        assert reads.saves(KEY, 1) == (3, 12.5)  # for the grace rule
        assert reads.saves(KEY, 2) is None
        stub.doc = None  # no answer from now on
        assert not await reads.poll(KEY, 10.0)
        assert reads.stalled(KEY, 1) is None
        assert await reads.poll(KEY, 31.0)  # 31 s without a step: act
        assert reads.stalled(KEY, 1) is not None
        assert reads.next_poll(KEY) is None  # stopped: no more reads
        reads.forget(KEY)
        assert reads.track(KEY) is None
        await reads.close()

    try:
        asyncio.run(scenario())
    finally:
        stub.close()
    assert stub.reads == 3
    assert reads.unanswered == 2


def test_a_trainer_without_the_endpoint_is_never_called_stalled(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # An older trainer image, or a user's own program: 404, at once, on every read.
    stub = ProgressStub(LiveProgress(attempt=1), status=404)
    stub.publish(tmp_path, "ml", "job-1")
    reads = LiveReads(LivePolicy(timeout_seconds=1), address_dir=tmp_path)

    async def scenario() -> None:
        reads.follow(KEY, 1, _pod(), 0.0, StallRule(timeout_seconds=30, first_step_seconds=60))
        for now in (0.0, 61.0, 3600.0):  # far past the first step's allowance
            assert not await reads.poll(KEY, now)
            assert reads.stalled(KEY, 1) is None
        assert reads.progress(KEY, 1) is None
        await reads.close()

    with caplog.at_level(logging.WARNING, logger="rekindle_operator.cluster.live"):
        try:
            asyncio.run(scenario())
        finally:
            stub.close()
    assert stub.reads == 3
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1, "said once per attempt, not on every read"
    assert "serves no /progress" in warned[0]
    assert "stallTimeoutSeconds does not apply" in warned[0]
