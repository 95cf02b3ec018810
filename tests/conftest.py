"""Shared test setup: the common layer is importable the way Lambda makes it importable."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "layers" / "common"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from crrmon_local import atomic

atomic.install()  # moto answers one request at a time, as AWS applies each atomically (atomic.py says why)
