import sys
from pathlib import Path

# The hand-made cells live beside the tests (the tests import in importlib mode, without packages).
sys.path.insert(0, str(Path(__file__).parent))
