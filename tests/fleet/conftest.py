import pytest
from fleet import FLEET_STACKS, SPOKES, hub, rendered, spoke


@pytest.fixture(scope="session")
def hub_stack():
    """The committed hub as its cluster receives it (rendered once per session)."""
    return hub()


@pytest.fixture(scope="session", params=SPOKES)
def spoke_stack(request):
    """Each committed spoke as its cluster receives it, reading the committed hub."""
    return spoke(request.param)


@pytest.fixture(scope="session", params=FLEET_STACKS)
def fleet_stack(request):
    """The hub and each spoke."""
    return rendered(request.param)
