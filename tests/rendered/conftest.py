import pytest
from rendering import STACKS, find_helm, render_stack


@pytest.fixture(scope="session", params=sorted(STACKS))
def stack(request):
    """Each committed stack as the cluster receives it (rendered once per session)."""
    helm, why = find_helm()
    if helm is None:
        pytest.fail(f"{why}; run scripts/test.sh, or put Helm 3 on PATH")
    return render_stack(request.param)
