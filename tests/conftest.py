import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
# The shared test support (mock harness, renderer, emulators) and the program's components.
for path in (TESTS / "support", TESTS.parent):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
