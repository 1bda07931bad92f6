"""Fixtures for the differential tests: one torch oracle and the seeds for the whole session."""

from __future__ import annotations

import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "differential: compares cnxp-audit with torch.load (needs torch)")


@pytest.fixture(scope="session")
def oracle():
    """A torch oracle worker (torch is imported only in that process)."""
    pytest.importorskip("torch", reason="the differential oracle needs torch")
    from differential.oracle import Oracle

    with Oracle() as o:
        yield o


@pytest.fixture(scope="session")
def seeds(oracle):
    """The seed checkpoints, written by torch in the oracle worker."""
    from differential.seeds import assemble

    return assemble(oracle.seed_parts())
