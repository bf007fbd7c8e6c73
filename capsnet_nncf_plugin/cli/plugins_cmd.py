"""``capsq plugins``: the loaded plugins and what each provides."""

from __future__ import annotations

import argparse

from capsnet_nncf_plugin.plugins import ENTRY_POINT_GROUP, plugin_report


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plugins",
        help="list the loaded plugins (entry points) and what each provides",
        description=f"Plugins are modules named by entry points in the group {ENTRY_POINT_GROUP!r}; "
        "a plugin that fails to load is listed with its error.",
    )
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    for info in plugin_report():
        origin = f" ({info.distribution})" if info.distribution else ""
        print(f"{info.name}{origin}: {info.module}")
        if info.error:
            print(f"  ERROR: {info.error}")
        for hook, names in sorted(info.provides.items()):
            label = hook.removeprefix("capsnet_").replace("_", " ")
            print(f"  {label}: {', '.join(names) or '-'}")
    return 0
