import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "observers.md"


def test_every_python_example_in_the_observers_doc_runs():
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert blocks
    for index, block in enumerate(blocks):
        exec(compile(block, f"{DOC.name}[python block {index}]", "exec"), {"__name__": "__doc_example__"})
