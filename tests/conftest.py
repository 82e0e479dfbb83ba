import os
import sys
from pathlib import Path

os.environ.setdefault("COLUMNS", "220")  # wide rich tables in CLI tests
sys.path.insert(0, str(Path(__file__).parent))
