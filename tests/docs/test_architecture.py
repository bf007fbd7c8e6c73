"""docs/architecture.md draws the layers that pyproject.toml's import-linter contract enforces."""

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "capsnet_nncf_plugin."


def _drawn_layers() -> list[str]:
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = re.search(r"## Layers.*?```\n(.*?)```", text, flags=re.DOTALL).group(1)
    # Each line: the packages (separated by " | "), then two or more spaces and what they are.
    return [re.split(r"\s{2,}", line.strip())[0] for line in block.splitlines() if line.strip()]


def _enforced_layers() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c["layers"] for c in config["contracts"] if c["type"] == "layers"]
    return [layer.replace(PACKAGE, "") for layer in layers]


def test_the_drawing_is_the_contract():
    assert _drawn_layers() == _enforced_layers()


def test_every_subpackage_is_in_a_layer():
    layered = {name.strip("()") for layer in _enforced_layers() for name in layer.split(" | ")}
    package = ROOT / "capsnet_nncf_plugin"
    modules = {path.name for path in package.iterdir() if path.is_dir() and (path / "__init__.py").exists()}
    modules |= {path.stem for path in package.glob("*.py") if path.stem != "__init__"}
    assert modules - layered == set()
