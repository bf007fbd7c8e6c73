"""An import-linter contract type for what the built-in ones cannot say: "these modules import no
``torch.ao``".

import-linter's forbidden contracts name external packages by their top level only (``torch``), and the
core is meant to import torch but not its ``torch.ao`` quantization stack. This contract reads the import
statements themselves (grimp keeps each one's line) and refuses any that names a forbidden submodule.
Registered in pyproject.toml under ``[tool.importlinter] contract_types``; ``make lint`` runs it.
"""

from __future__ import annotations

import re

from grimp import ImportGraph
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck
from importlinter.domain.helpers import module_expressions_to_modules


def imported_names(line: str) -> list[str]:
    """The dotted names an import statement reaches: ``from a.b import c`` gives ``a.b`` and ``a.b.c``."""
    statement = " ".join(line.split())
    match = re.match(r"from ([\w.]+) import \(?(.*?)\)?$", statement)
    if match:
        module = match.group(1)
        names = [part.split(" as ")[0].strip() for part in match.group(2).split(",")]
        return [module, *(f"{module}.{name}" for name in names if name)]
    match = re.match(r"import (.*)$", statement)
    if match:
        return [part.split(" as ")[0].strip() for part in match.group(1).split(",")]
    return []


def names_submodule(name: str, submodule: str) -> bool:
    return name == submodule or name.startswith(submodule + ".")


class ForbiddenExternalSubmodulesContract(Contract):
    """``source_modules`` (and their descendants) import none of ``forbidden_submodules`` directly.

    ``forbidden_submodules`` are dotted names inside external packages, e.g. ``torch.ao``. Internal
    indirection is the layers contract's business: a module that imports ``torch.ao`` must sit in a layer
    the source modules cannot import.
    """

    type_name = "forbidden_external_submodules"

    source_modules = fields.SetField(subfield=fields.ModuleExpressionField())
    forbidden_submodules = fields.SetField(subfield=fields.StringField())

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        sources = module_expressions_to_modules(graph, self.source_modules)  # type: ignore[arg-type]
        importers = set()
        for source in sources:
            importers.add(source.name)
            importers |= graph.find_descendants(source.name)
        violations = []
        for submodule in sorted(self.forbidden_submodules):  # type: ignore[arg-type]
            root = submodule.split(".")[0]
            if root not in graph.modules:
                continue
            for importer in sorted(graph.find_modules_that_directly_import(root) & importers):
                for detail in graph.get_import_details(importer=importer, imported=root):
                    names = imported_names(detail["line_contents"])
                    if any(names_submodule(name, submodule) for name in names):
                        violations.append(
                            {
                                "importer": importer,
                                "submodule": submodule,
                                "line_number": detail["line_number"],
                                "line": detail["line_contents"].strip(),
                            }
                        )
        return ContractCheck(kept=not violations, metadata={"violations": violations})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for violation in check.metadata["violations"]:
            output.print_error(
                f"{violation['importer']} imports {violation['submodule']} (line {violation['line_number']}: "
                f"{violation['line']})",
                bold=False,
            )
        output.new_line()
