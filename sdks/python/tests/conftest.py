import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from harness import Stack  # noqa: E402


@pytest.fixture(scope="session")
def stack():
    """One anvil + daemon + cosigner for the whole run."""
    started = Stack()
    yield started
    started.stop()
