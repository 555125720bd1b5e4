"""``TF_CONFIG``, written by the operator and ``rekindle run``, read by the trainer."""

from __future__ import annotations

import json

import pytest

from rekindle_trainer import contract
from rekindle_trainer.contract import gang

HOSTS = ["a:1", "b:2", "c:3"]


@pytest.mark.parametrize("index", [0, 1, 2])
def test_tf_config_lists_every_worker_and_names_this_one(index: int) -> None:
    assert gang.tf_config(HOSTS, index) == {
        "cluster": {"worker": HOSTS},
        "task": {"type": "worker", "index": index},
    }
    text = gang.tf_config_text(HOSTS, index)
    assert json.loads(text) == gang.tf_config(HOSTS, index)
    assert " " not in text


@pytest.mark.parametrize(("hosts", "index"), [([], 0), (HOSTS, 3), (HOSTS, -1), (["h:1"] * 65, 0)])
def test_tf_config_outside_the_gang_is_refused(hosts: list[str], index: int) -> None:
    with pytest.raises(ValueError, match="gang"):
        gang.tf_config(hosts, index)


@pytest.mark.parametrize(("index", "chief"), [(0, True), (1, False), (2, False)])
def test_worker_role_reads_tf_config_and_worker_0_is_the_chief(index: int, chief: bool) -> None:
    role = gang.worker_role({contract.ENV_TF_CONFIG: gang.tf_config_text(HOSTS, index)})
    assert role == gang.WorkerRole(index=index, count=3)
    assert role.is_chief is chief
    assert contract.CHIEF_INDEX == 0


@pytest.mark.parametrize("environ", [{}, {contract.ENV_TF_CONFIG: ""}, {"OTHER": "x"}])
def test_without_tf_config_a_process_is_the_only_worker(environ: dict[str, str]) -> None:
    assert gang.worker_role(environ) == gang.SOLO
    assert gang.SOLO.is_chief
    assert gang.SOLO.count == 1


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{", "not JSON"),
        ("[]", "cluster must be an object"),
        ('{"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}', "cluster.worker"),
        ('{"cluster": {"worker": [1]}, "task": {"type": "worker", "index": 0}}', "cluster.worker"),
        (
            '{"cluster": {"worker": ["a:1"], "chief": ["c:1"]},'
            ' "task": {"type": "worker", "index": 0}}',
            "only 'worker' tasks",
        ),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", "index": 0}}', "task.type"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}', "task.index"),
        (
            '{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": true}}',
            "task.index",
        ),
    ],
)
def test_a_bad_tf_config_names_the_part_that_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match="TF_CONFIG") as error:
        gang.worker_role({contract.ENV_TF_CONFIG: text})
    assert problem in str(error.value)


def test_peer_lost_is_written_only_when_true_and_read_back() -> None:
    plain = contract.TerminationMessage(outcome=contract.Outcome.FAILED, error="x")
    assert "peer_lost" not in plain.to_json()
    assert contract.TerminationMessage.from_json(plain.to_json()).peer_lost is False
    lost = contract.TerminationMessage(outcome=contract.Outcome.FAILED, peer_lost=True)
    assert json.loads(lost.to_json())["peer_lost"] is True
    assert contract.TerminationMessage.from_json(lost.to_json()) == lost


def test_peer_lost_must_be_a_boolean() -> None:
    doc = '{"outcome": "failed", "epoch": 0, "step": 0, "peer_lost": 1}'
    with pytest.raises(ValueError, match="peer_lost"):
        contract.TerminationMessage.from_json(doc)
