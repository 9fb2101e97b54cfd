import pytest
from rendering import RenderedStack, find_helm, render_stack


@pytest.fixture(scope="session")
def rendered():
    """A committed stack as the cluster receives it: ``rendered("dev")`` (once per session)."""

    def render(name: str) -> RenderedStack:
        helm, why = find_helm()
        if helm is None:
            pytest.fail(f"{why}; run scripts/test.sh, or put Helm 3 on PATH")
        return render_stack(name)

    return render
