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

# Each command, the module that defines it and its one-line summary, in the order `--help` lists
# them. `painformer --help` imports no command module (several load torch: seconds and a gigabyte);
# running a command imports only its module, which defines the real sub-parser.
COMMANDS = {
    "models": ("painformer.models.cli", "inspect the models (PainFormer, Embedding-Mixer, Video-Encoder)"),
    "index": ("painformer.data.cli", "check a dataset tree and write its sample table"),
    "demo-data": ("painformer.data.cli", "generate the demo dataset (BioVid Part A layout)"),
    "render-biosignals": (
        "painformer.render.cli",
        "render every sample's biosignal as 224x224 images into a resumable Zarr store",
    ),
    "video": ("painformer.video.cli", "video decoding: inspect frame counts, rates and crop boxes"),
    "thermal": ("painformer.thermal.cli", "synthetic thermal video: train, evaluate and apply an RGB->thermal cGAN"),
    "depth": (
        "painformer.depth.cli",
        "estimated depth video: Depth Anything (transformers) from a local model directory",
    ),
    "embed": ("painformer.embed.cli", "embed every sample's images with PainFormer into a resumable Zarr store"),
    "export": ("painformer.embed.cli", "export a store to another format (HDF5)"),
    "inspect": (
        "painformer.embed.cli",
        "print a store's shape, completeness and metadata; --verify reads every sample",
    ),
    "train": ("painformer.train.cli", "train and evaluate folds of an Embedding-Mixer experiment on cached embeddings"),
    "report": ("painformer.report.cli", "metric tables, plots and the summary over experiments"),
    "pretrain": ("painformer.pretrain.cli", "multi-task pretraining of the PainFormer backbone (Eq. 10)"),
    "attention": ("painformer.interpret.cli", "write attention-map overlays of chosen samples (Fig. 5)"),
    "predict": ("painformer.predict.cli", "apply a final model to new recordings (a dataset tree or a sample table)"),
}
COMMAND_MODULES = tuple(dict.fromkeys(module for module, _ in COMMANDS.values()))


def _requested_command(argv: list[str]) -> str | None:
    """The command named on the command line, if it is a known one (options come first)."""
    for argument in argv:
        if not argument.startswith("-"):
            return argument if argument in COMMANDS else None
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with ``argv`` naming a command, only that command's module is imported, without one
    none is (the command list shows the summaries above)."""
    from painformer import __version__

    parser = argparse.ArgumentParser(
        prog="painformer",
        description="Automatic pain assessment with the PainFormer foundation model.",
    )
    parser.add_argument("--version", action="version", version=f"painformer {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    command = _requested_command(argv or [])
    if command:
        importlib.import_module(COMMANDS[command][0]).add_commands(subparsers)
    else:
        for name, (_, summary) in COMMANDS.items():
            subparsers.add_parser(name, help=summary)
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
