"""The import-linter contract that keeps ``torch.ao`` out of the core sees every spelling of the import."""

import sys
import textwrap

import grimp
import pytest

from tools.import_contracts import ForbiddenExternalSubmodulesContract, imported_names, names_submodule


@pytest.mark.parametrize(
    ("line", "forbidden"),
    [
        ("from torch.ao.quantization import QConfig", True),
        ("from torch.ao.quantization.backend_config import (", True),
        ("import torch.ao.nn.intrinsic as intrinsic", True),
        ("from torch import nn, ao as quantization", True),
        ("import torch", False),
        ("from torch.nn import Conv2d", False),
        ("from torch import aot_function", False),
    ],
)
def test_every_spelling_of_a_torch_ao_import_is_seen(line, forbidden):
    assert any(names_submodule(name, "torch.ao") for name in imported_names(line)) is forbidden


def test_the_contract_names_the_module_and_the_line(tmp_path, monkeypatch):
    package = tmp_path / "layered"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "core.py").write_text("import torch\n")
    (package / "adapter.py").write_text(
        textwrap.dedent(
            """
            import torch
            from torch.ao.quantization import QConfig
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("layered", include_external_packages=True, cache_dir=None)
    sys.modules.pop("layered", None)

    def check(source):
        contract = ForbiddenExternalSubmodulesContract(
            name="no torch.ao",
            session_options={"root_packages": ["layered"]},
            contract_options={"source_modules": [source], "forbidden_submodules": ["torch.ao"]},
        )
        return contract.check(graph, verbose=False)

    assert check("layered.core").kept
    broken = check("layered.adapter")
    assert not broken.kept
    (violation,) = broken.metadata["violations"]
    assert violation["importer"] == "layered.adapter" and "QConfig" in violation["line"]
