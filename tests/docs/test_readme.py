"""The README is read in five minutes: short, with the commands that deploy the stack and
run the tests near its top, and the rest in docs/ and CONTRIBUTING.md."""

from documents import lines

MAX_LINES = 260
TOP = 60  # what a reader sees before scrolling far


def commands(first: int) -> list[str]:
    return [line.text.strip() for line in lines("README.md")[:first] if line.in_code_block]


def test_the_readme_is_short():
    assert len(lines("README.md")) <= MAX_LINES


def test_the_deploy_and_test_commands_come_first():
    top = commands(TOP)
    assert any(c == "pulumi up" or c.startswith("scripts/minikube-up.sh") for c in top), top
    assert "scripts/test.sh" in top, top
