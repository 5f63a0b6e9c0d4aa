"""docs/acls.md shows the one table of ACLs per command (kafkaops/doctor/acls.py) and names
only commands kafkaops has."""

from __future__ import annotations

from pathlib import Path

from kafkaops.doctor import acls
from tests.test_docs import runnable

PAGE = Path(__file__).resolve().parents[2] / "docs" / "acls.md"


def test_the_acl_page_shows_the_table_the_code_and_the_tests_use() -> None:
    page = PAGE.read_text()
    assert acls.page_with_table(page) == page, "docs/acls.md is stale: run make docs"


def test_the_table_names_only_commands_kafkaops_has() -> None:
    assert {f"kafkaops {c}" for c in acls.COMMANDS} <= runnable()


def test_the_replay_names_are_the_replay_commands_own() -> None:
    from kafkaops.dlq.plan import ReplayRequest

    request = ReplayRequest(source="casino.wallet.v1.dlq")
    (group, txn) = [
        b.name for b in acls.bindings("dlq replay", {"dlq": [request.source]}) if b.resource != "topic"
    ]
    assert (group, txn) == (request.group_id, request.transactional_id)
    assert txn == "kafkaops-replay:kafkaops-replay.casino.wallet.v1.dlq:casino.wallet.v1.dlq"
