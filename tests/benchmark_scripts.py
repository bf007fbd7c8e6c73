"""The scripts of benchmarks/ as modules, for their tests: ``load_benchmark("frontier.py")``."""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"


def load_benchmark(script: str) -> ModuleType:
    """Import ``benchmarks/script`` as a module named after the file.

    The folder goes on ``sys.path`` as when the script runs (scripts import each other's helpers), and the
    module into ``sys.modules``, which its dataclasses need.
    """
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    name = f"benchmark_{script.removesuffix('.py')}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / script)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
