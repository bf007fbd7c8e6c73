"""Every `capsq` command in a shell block of README.md and docs/*.md parses with today's CLI."""

import re
import shlex
from pathlib import Path

import pytest

from capsnet_nncf_plugin.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
SHELL_BLOCK = re.compile(r"^```(?:bash|sh|console)\n(.*?)^```", re.DOTALL | re.MULTILINE)


def documented_commands():
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for block in SHELL_BLOCK.finditer(path.read_text()):
            for line in block.group(1).replace("\\\n", " ").splitlines():
                words = shlex.split(line, comments=True)
                if words[:1] == ["capsq"]:
                    yield pytest.param(words[1:], id=f"{path.name}:{' '.join(words[1:3])}")


COMMANDS = list(documented_commands())


def test_the_docs_show_commands_of_every_kind():
    shown = {words[0] for words in (param.values[0] for param in COMMANDS) if words}
    assert {"data", "train", "eval", "zoo", "quantize"} <= shown


@pytest.mark.parametrize("arguments", COMMANDS)
def test_documented_command_parses(arguments, capsys):
    try:
        build_parser().parse_args(arguments)
    except SystemExit as exit_:
        # --help exits 0 after printing; anything else is argparse refusing the documented command.
        assert exit_.code == 0, capsys.readouterr().err
