"""``rekindle operator``: its flags and the options they give the kopf process."""

from __future__ import annotations

import pytest

from rekindle_operator import cli
from rekindle_operator.cluster import operator_command


def options(*argv: str) -> operator_command.OperatorOptions:
    args = cli.build_parser().parse_args(["operator", *argv])
    return operator_command.options_from(args)


def test_defaults() -> None:
    got = options("--all-namespaces")
    assert got.all_namespaces
    assert got.namespaces == ()
    assert got.metrics_port == 8000
    assert got.liveness_port == 8080
    assert got.liveness_endpoint == "http://0.0.0.0:8080/healthz"
    assert got.peering is None
    assert not got.standalone
    assert got.log_format == "json"


def test_namespaces_repeat() -> None:
    got = options("-n", "team-a", "--namespace", "team-b", "--peering", "rekindle")
    assert got.namespaces == ("team-a", "team-b")
    assert not got.all_namespaces
    assert got.peering == "rekindle"


@pytest.mark.parametrize(
    "argv",
    [
        (),  # neither a namespace nor --all-namespaces
        ("-A", "-n", "x"),  # both
        ("-A", "--peering", "p", "--standalone"),  # peering and standalone
        ("-A", "--metrics-port", "70000"),
        ("-A", "--liveness-port", "http"),
    ],
)
def test_bad_flags_are_refused(argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        options(*argv)
    assert info.value.code == 2
    assert "rekindle operator" in capsys.readouterr().err


def test_replicas_get_distinct_priorities_unless_told() -> None:
    # kopf pauses every replica when two share the highest priority.
    assert len({options("-A", "--peering", "p").priority for _ in range(20)}) > 1
    assert options("-A", "--peering", "p", "--priority", "7").priority == 7


def test_port_zero_disables() -> None:
    got = options("-A", "--metrics-port", "0", "--liveness-port", "0")
    assert (got.metrics_port, got.liveness_port) == (0, 0)
