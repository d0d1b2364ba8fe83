"""The ``painformer`` command line.

Every sub-package that offers commands has a ``cli`` module with a function
``add_commands(subparsers)``; it adds its sub-commands, each with
``set_defaults(func=...)`` pointing at a function taking the parsed arguments.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from painformer.errors import PainformerError

# One entry per sub-package with commands, in the order `--help` lists them.
COMMAND_MODULES = (
    "painformer.models.cli",
    "painformer.data.cli",
    "painformer.render.cli",
    "painformer.video.cli",
    "painformer.thermal.cli",
    "painformer.depth.cli",
    "painformer.embed.cli",
    "painformer.train.cli",
    "painformer.report.cli",
    "painformer.pretrain.cli",
    "painformer.interpret.cli",
)


def build_parser() -> argparse.ArgumentParser:
    from painformer import __version__

    parser = argparse.ArgumentParser(
        prog="painformer",
        description="Automatic pain assessment with the PainFormer foundation model.",
    )
    parser.add_argument("--version", action="version", version=f"painformer {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            # A sub-package without commands (or not installed) is simply not listed;
            # a missing dependency *inside* a command module is a real error.
            if error.name is not None and name.startswith(error.name):
                continue
            raise
        module.add_commands(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except PainformerError as error:
        print(f"painformer {args.command}: error: {error}", file=sys.stderr)
        return 1
    return int(result or 0)



if __name__ == "__main__":
    sys.exit(main())
