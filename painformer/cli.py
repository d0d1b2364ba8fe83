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

# Each command and the module that defines it, in the order `--help` lists them. Running one
# command imports only its module: sub-packages may load torch, and a command that does not
# need it should not pay seconds and a gigabyte to start.
COMMANDS = {
    "models": "painformer.models.cli",
    "index": "painformer.data.cli",
    "demo-data": "painformer.data.cli",
    "render-biosignals": "painformer.render.cli",
    "video": "painformer.video.cli",
    "thermal": "painformer.thermal.cli",
    "depth": "painformer.depth.cli",
    "embed": "painformer.embed.cli",
    "export": "painformer.embed.cli",
    "inspect": "painformer.embed.cli",
    "train": "painformer.train.cli",
    "report": "painformer.report.cli",
    "pretrain": "painformer.pretrain.cli",
    "attention": "painformer.interpret.cli",
}
COMMAND_MODULES = tuple(dict.fromkeys(COMMANDS.values()))


def _requested_command(argv: list[str]) -> str | None:
    """The command named on the command line, if it is a known one (options come first)."""
    for argument in argv:
        if not argument.startswith("-"):
            return argument if argument in COMMANDS else None
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with ``argv`` naming a command, only that command's module is imported."""
    from painformer import __version__

    parser = argparse.ArgumentParser(
        prog="painformer",
        description="Automatic pain assessment with the PainFormer foundation model.",
    )
    parser.add_argument("--version", action="version", version=f"painformer {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    command = _requested_command(argv or [])
    modules = (COMMANDS[command],) if command else COMMAND_MODULES
    for name in modules:
        importlib.import_module(name).add_commands(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
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
