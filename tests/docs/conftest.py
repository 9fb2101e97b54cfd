import pytest
from rendering import RenderedStack, render_stack


@pytest.fixture(scope="session")
def rendered():
    """A committed stack as the cluster receives it: ``rendered("dev")`` (once per session)."""

    def render(name: str) -> RenderedStack:
        return render_stack(name)

    return render
