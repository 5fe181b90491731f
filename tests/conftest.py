"""Project-test options: `pytest --runslow` also runs the tests marked slow (training to a
return threshold, minutes each); without it they are skipped."""
import pytest


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False,
                     help="run the tests marked @pytest.mark.slow (training to a return threshold)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
