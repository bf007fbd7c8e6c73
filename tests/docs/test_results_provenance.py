"""Every measured row in docs/ names the commit that measured it (issue 34: 21 of 44 rows once did not)."""

import json
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
#: A commit as benchmarks/allocation.py records it: 12 hex digits, ``+changes`` if the tree was dirty.
COMMIT = re.compile(r"[0-9a-f]{7,40}(\+changes)?")


def _allocation_rows():
    for path in sorted(DOCS.glob("results*.json")):
        for model, entry in json.loads(path.read_text())["models"].items():
            for method, row in entry["methods"].items():
                yield pytest.param(row, id=f"{path.name}:{model}:{method}")


@pytest.mark.parametrize("row", list(_allocation_rows()))
def test_every_allocation_row_names_its_commit(row):
    assert COMMIT.fullmatch(str(row.get("code"))), "re-measure it: benchmarks/allocation.py ... --unrecorded"


def test_every_frontier_and_search_speed_row_names_its_commit():
    frontier = json.loads((DOCS / "frontier.json").read_text())
    # One record per machine kind: search-speed.json, search-speed-vnni.json, ...
    speed = [
        row
        for path in DOCS.glob("search-speed*.json")
        for row in json.loads(path.read_text())["rows"].values()
    ]
    codes = [entry["code"] for entry in frontier.values()] + [row["code"] for row in speed]
    assert codes and all(COMMIT.fullmatch(code) for code in codes)
