"""Fixtures: real checkpoints written by torch.save at test time (torch tests skip without torch, security tests
never: see ``REQUIRE_SECURITY``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

DRIVE_NAMES = {"XS": "ConvNeXtPose_XS.tar", "S": "ConvNeXtPose_S.tar", "M": "ConvNeXtPose_M (1).tar",
               "L": "ConvNeXtPose_L (1).tar"}
#: State-dict element counts the public report measured on the Drive files.
REPORTED_TOTALS = {"L": 8_391_354, "M": 7_596_986, "S": 7_448_954}


def pytest_addoption(parser):
    parser.addoption("--online", action="store_true", help="run tests that need Google Drive")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--online"):
        return
    skip = pytest.mark.skip(reason="needs network; run with --online")
    for item in items:
        if "online" in item.keywords:
            item.add_marker(skip)


# -- security tests never skip -----------------------------------------------------------------------------------------
#: Set by CI (.ci/run): a skipped test marked ``security`` (one that builds a hostile input) fails the run.
REQUIRE_SECURITY = os.environ.get("CNXP_REQUIRE_SECURITY") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CNXP_REQUIRE_SECURITY=1, a skipped ``security`` test is a failure (an expected xfail stays one)."""
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_SECURITY and report.skipped and not hasattr(report, "wasxfail") and item.get_closest_marker("security"):
        _fail_skip(report, item.nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """The same for a whole module skipped while it is collected (``importorskip`` at its top)."""
    outcome = yield
    report = outcome.get_result()
    path = Path(str(getattr(collector, "path", "") or ""))
    if REQUIRE_SECURITY and report.skipped and path.suffix == ".py" and path.is_file() \
            and "mark.security" in path.read_text(encoding="utf-8"):
        _fail_skip(report, report.nodeid)


def _fail_skip(report, nodeid: str) -> None:
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = f"{nodeid}: a security test was skipped ({reason}); CNXP_REQUIRE_SECURITY=1 forbids it"


@pytest.fixture(scope="session")
def torch():
    return pytest.importorskip("torch", reason="torch extra not installed")


@pytest.fixture(scope="session")
def drive_dir(tmp_path_factory, torch):
    """The four Drive checkpoints at their real sizes: zip archives saved as snapshot_83.pth.tar, renamed."""
    import torch_models as tm

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("drive")
    for label, name in DRIVE_NAMES.items():
        tm.save_like_drive(tm.build(label), folder, name)
    return folder


@pytest.fixture(scope="session")
def small_ckpt(tmp_path_factory, torch):
    """A small DataParallel-style training checkpoint (zip) with AdamW state."""
    import torch_models as tm

    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Conv2d(4, 2, 1))
    folder = tmp_path_factory.mktemp("small")
    return tm.save_like_drive(model, folder, "small.pth", epoch=5)


@pytest.fixture(scope="session")
def refused_files(tmp_path_factory, torch):
    """Files torch's weights_only loader refuses, built with torch (tests/refused_models.py): torch.save(model) of
    every variant, Lightning-style checkpoints (argparse, omegaconf), a TorchScript archive, numpy values, protocol 4."""
    import refused_models as rm

    folder = tmp_path_factory.mktemp("refused")
    files = {f"whole_{label}": rm.whole_module(label, folder) for label in ("XS", "S", "M", "L")}
    files.update({name: build(folder) for name, build in rm.BUILDERS.items()})
    return files


@pytest.fixture(scope="session")
def torch_oracle(torch):
    """torch.load in a sandboxed, forked child per file: the differential tests' oracle (tests/differential)."""
    oracle = pytest.importorskip("differential.oracle",
                                 reason="the torch oracle of the differential tests (tests/differential)")
    with oracle.Oracle(timeout=120) as o:
        yield o


@pytest.fixture
def sentinel(tmp_path):
    """A path a malicious payload would create; tests assert it never appears."""
    path = tmp_path / "PWNED"
    yield path
    assert not path.exists(), "a payload ran"


def run_cli(*args: str):
    """Invoke the CLI in-process with Click's runner; return the result (stdout and stderr separate)."""
    from click.testing import CliRunner
    from convnextpose_audit.cli import cli

    try:
        runner = CliRunner(mix_stderr=False)
    except TypeError:  # click >= 8.2 keeps stderr separate already
        runner = CliRunner()
    return runner.invoke(cli, [os.fspath(a) for a in args], catch_exceptions=False)
