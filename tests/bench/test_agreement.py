"""The agreement benchmark's summary: per-round share, spread, table (no TensorFlow needed)."""

from __future__ import annotations

import pytest

from bench import agreement


def test_each_round_shares_its_own_agreement_over_its_own_step() -> None:
    # A loaded round (both slower) and a quiet one: each share is its own ratio.
    summary = agreement.summarize(
        [
            {"agree_ms": 7.0, "step_ms": 20.0},
            {"agree_ms": 14.0, "step_ms": 40.0},
            {"agree_ms": 5.0, "step_ms": 25.0},
        ]
    )
    assert summary["rounds"] == 3
    assert summary["agree_ms"] == {"median": 7.0, "min": 5.0, "max": 14.0}
    assert summary["step_ms"] == {"median": 25.0, "min": 20.0, "max": 40.0}
    assert summary["agree_percent_of_step"] == {"median": 35.0, "min": 20.0, "max": 35.0}
    assert summary["verdict"] == "measured, not judged (no goal set)"


@pytest.mark.parametrize(
    ("rounds", "words"),
    [
        ([], "rounds: empty"),
        ([{"agree_ms": 1.0, "step_ms": 0.0}], r"rounds\[0\].step_ms: 0"),
        ([{"agree_ms": -1.0, "step_ms": 2.0}], r"rounds\[0\].agree_ms: expected a number >= 0"),
        ([{"agree_ms": 1.0}], r"rounds\[0\].step_ms: expected a number"),
    ],
)
def test_bad_rounds_name_the_field(rounds: list[dict[str, float]], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        agreement.summarize(rounds)


def test_the_table_gives_median_and_range_for_each_gang_size() -> None:
    one = agreement.summarize([{"agree_ms": 0.004, "step_ms": 2.5}])
    two = agreement.summarize([{"agree_ms": 7.0, "step_ms": 20.0}])
    rows = agreement.table_rows({"1 worker": one, "2 workers": two})
    assert rows[0] == ("agree() per step, 1 worker (ms)", "0.004 (0.004-0.004)", "")
    assert rows[5] == ("agreement / step, 2 workers", "35 % (35-35)", agreement.VERDICT)


def test_steps_that_agreed_at_their_end_give_what_the_agreement_added() -> None:
    summary = agreement.summarize(
        [
            {"agree_ms": 7.0, "step_ms": 20.0, "agreed_step_ms": 26.0},
            {"agree_ms": 6.0, "step_ms": 22.0, "agreed_step_ms": 30.0},
        ]
    )
    assert summary["added_in_step_ms"] == {"median": 7.0, "min": 6.0, "max": 8.0}
    rows = agreement.table_rows({"2 workers": summary})
    assert rows[-1] == ("added by agreeing, 2 workers (ms)", "7 (6-8)", "")
    assert "added_in_step_ms" not in agreement.summarize([{"agree_ms": 1.0, "step_ms": 2.0}])
