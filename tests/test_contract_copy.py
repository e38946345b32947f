"""The repository's copy of the contract messages matches ../shared/contract, where that folder exists."""

from __future__ import annotations

import pytest

from tests.conftest import CONTRACT_DIR, SHARED_CONTRACT_DIR


def test_the_repository_ships_every_contract_message() -> None:
    names = sorted(p.name for p in CONTRACT_DIR.glob("*.json"))
    assert names == [
        "legacy-query-event.json",
        "legacy-response-event.json",
        "query-event.json",
        "response-event.json",
    ]


@pytest.mark.skipif(not SHARED_CONTRACT_DIR.is_dir(), reason="no ../shared/contract beside this checkout")
def test_the_copy_matches_the_shared_contract() -> None:
    shared = {p.name: p.read_bytes() for p in SHARED_CONTRACT_DIR.iterdir() if p.is_file()}
    ours = {p.name: p.read_bytes() for p in CONTRACT_DIR.iterdir() if p.is_file()}
    assert ours == shared, "contract/ differs from ../shared/contract: copy the shared messages again"
