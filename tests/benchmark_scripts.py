"""The scripts of benchmarks/ as modules, for their tests: ``load_benchmark("frontier.py")``."""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"


def load_benchmark(script: str) -> ModuleType:
    """Import ``benchmarks/script`` as a module named after the file.

    The folder is on ``sys.path`` while the script is imported, as when it runs (scripts import each
    other's helpers), and only then: its ``capture.py`` would hide the tests' ``capture`` package. The
    module goes into ``sys.modules``, which its dataclasses need.
    """
    name = f"benchmark_{script.removesuffix('.py')}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / script)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module
