import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
# The shared test support (mock harness, renderer, emulators) and the program's components.
for path in (TESTS / "support", TESTS.parent):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import tools  # noqa: E402  (found through the path set above)


# A test that runs a tool outside Python asks for it with one of these (or calls
# tools.require_*() itself): skipped with one line saying how to get it, failed under CI=true.
@pytest.fixture
def needs_helm() -> str:
    return tools.require_helm()


@pytest.fixture
def needs_node_logql() -> str:
    return tools.require_node_logql()


@pytest.fixture
def needs_promtool() -> str:
    return tools.require_promtool()


@pytest.fixture
def needs_busybox() -> str:
    return tools.require_busybox()


@pytest.fixture
def needs_nginx() -> str:
    return tools.require_nginx()
