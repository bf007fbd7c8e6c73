"""What every recognizer works with: the captured graph, the matches found before it, and module names."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from torch import fx

from capsnet_nncf_plugin.capture.graph import CapturedGraph, module_path
from capsnet_nncf_plugin.capture.matches import FloatRegion, Match


@dataclass
class RecognitionContext:
    """The graph, the matches so far (recognizers run in order and may absorb earlier matches), the warnings
    for the report, and the module names taken."""

    graph: CapturedGraph
    matches: list[Match] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    names: set[str] = field(default_factory=set)
    floating: list[FloatRegion] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[Match]:
        return [match for match in self.matches if match.kind == kind]

    def claimed(self) -> set[fx.Node]:
        """The nodes some match's region, or a region left float, holds."""
        return {node for match in self.matches for node in match.nodes} | {
            node for region in self.floating for node in region.nodes
        }

    def keep_float(self, absorbed: list[Match], region: FloatRegion) -> None:
        """Leave ``region`` float: the matches inside it (its squashes) are dropped, its nodes reserved."""
        self.matches = [match for match in self.matches if match not in absorbed]
        for match in absorbed:
            self.names.discard(match.name)
        self.floating.append(region)

    def add(self, match: Match) -> Match:
        """Record a new match."""
        self.matches.append(match)
        return match

    def replace(self, absorbed: list[Match], match: Match) -> None:
        """``match`` takes the place of the matches it absorbed."""
        match.absorbs = [*match.absorbs, *absorbed]
        self.matches = [existing for existing in self.matches if existing not in absorbed]
        for old in absorbed:
            self.names.discard(old.name)
        self.matches.append(match)

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def name_for(self, node: fx.Node, kind: str, preferred: str | None = None) -> str:
        """A module name for a region anchored at ``node``: ``preferred``, else the user module it was
        traced in, else ``kind``; made unique among the names given out."""
        base = preferred or module_path(node) or kind
        base = re.sub(r"\W", "_", base.replace(".", "_")) or kind
        name, index = base, 1
        while name in self.names:
            index += 1
            name = f"{base}_{index}"
        self.names.add(name)
        return name
