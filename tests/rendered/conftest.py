import pytest
from rendering import STACKS, render_stack


@pytest.fixture(scope="session", params=sorted(STACKS))
def stack(request):
    """Each committed stack as the cluster receives it (rendered once per session)."""
    return render_stack(request.param)
