import pytest
from fleet import FLEET_STACKS, SPOKES, hub, rendered, spoke
from rendering import find_helm


def _helm() -> None:
    helm, why = find_helm()
    if helm is None:
        pytest.fail(f"{why}; run scripts/test.sh, or put Helm 3 on PATH")


@pytest.fixture(scope="session")
def hub_stack():
    """The committed hub as its cluster receives it (rendered once per session)."""
    _helm()
    return hub()


@pytest.fixture(scope="session", params=SPOKES)
def spoke_stack(request):
    """Each committed spoke as its cluster receives it, reading the committed hub."""
    _helm()
    return spoke(request.param)


@pytest.fixture(scope="session", params=FLEET_STACKS)
def fleet_stack(request):
    """The hub and each spoke."""
    _helm()
    return rendered(request.param)
