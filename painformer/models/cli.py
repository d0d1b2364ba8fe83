"""Command: ``painformer models summary`` (parameters and MACs beside the paper's Table I)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from painformer.cli_types import positive_int
from painformer.models.flops import ModelCost, table_i_costs


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    models = subparsers.add_parser(
        "models",
        help="inspect the models (PainFormer, Embedding-Mixer, Video-Encoder)",
        description="Inspect the three models of the framework.",
    )
    model_commands = models.add_subparsers(dest="models_command", metavar="SUBCOMMAND", required=True)
    summary = model_commands.add_parser(
        "summary",
        help="parameters and MACs of the three models beside Table I",
        description="Count parameters and multiply-accumulates (convolution and linear layers only, "
        "the way Table I counts FLOPs) of PainFormer on one 224x224 image and of the Embedding-Mixer "
        "and Video-Encoder on one embedding, and print them beside Table I.",
    )
    summary.add_argument(
        "--input-length",
        type=positive_int,
        default=22_080,
        help="embedding length for the Embedding-Mixer and Video-Encoder (Table I: 22080; also 160, 200)",
    )
    summary.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    summary.set_defaults(func=run_summary)


def format_table(rows: list[ModelCost]) -> str:
    """Fixed-width table: ours next to Table I, with the relative differences."""
    header = (
        f"{'model':<16} {'input':<18} {'params (M)':>10} {'Table I':>8} {'diff':>7}"
        f" {'GMACs':>7} {'Table I':>8} {'diff':>7}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        params_m = row.params / 1e6
        gmacs = row.macs / 1e9
        shape = " x ".join(str(n) for n in row.input_shape)
        lines.append(
            f"{row.model:<16} {shape:<18} {params_m:>10.2f} {row.table_params_m:>8.2f}"
            f" {params_m / row.table_params_m - 1:>+7.1%} {gmacs:>7.2f} {row.table_gmacs:>8.2f}"
            f" {gmacs / row.table_gmacs - 1:>+7.1%}"
        )
    lines.append("GMACs: multiply-accumulates of convolution and linear layers, as Table I counts its FLOPs.")
    return "\n".join(lines)


def run_summary(args: argparse.Namespace) -> int:
    rows = table_i_costs(input_length=args.input_length)
    if args.json:
        print(json.dumps([asdict(row) for row in rows], indent=2))
    else:
        print(format_table(rows))
    return 0
