"""Command: ``painformer render-biosignals`` (biosignals -> resumable image store)."""

from __future__ import annotations

import argparse

from painformer.cli_types import positive_int

# Only the light parameter module here: building the parser must not import scipy/OpenCV.
from painformer.render.params import REPRESENTATIONS, SIGNALS


def add_commands(subparsers) -> None:
    render = subparsers.add_parser(
        "render-biosignals",
        help="render every sample's biosignal as 224x224 images into a resumable Zarr store",
        description="Draw each sample's ECG, EMG or GSR (one image) or fNIRS HbO2 channels (one image "
        "per channel) as a waveform or a spectrogram (angle, unwrapped phase, PSD), as in the "
        "paper's Fig. 3. Rerunning resumes from the store's done mask; the marker is written only "
        "once every sample is rendered.",
    )
    render.add_argument("--samples", required=True, help="sample table (samples.tsv)")
    render.add_argument("--signal", required=True, choices=SIGNALS)
    render.add_argument("--representation", required=True, choices=REPRESENTATIONS)
    render.add_argument("--out", required=True, help="output store, e.g. results/demo/images/gsr/waveform.zarr")
    render.add_argument("--complete-marker", help="JSON file written only once every sample is rendered")
    render.add_argument("--batch-size", type=positive_int, default=64, help="signals rendered per call")
    render.add_argument("--loader-threads", type=positive_int, default=2, help="threads reading signal files")
    render.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    render.add_argument("--force", action="store_true", help="delete an existing store made differently and start over")
    render.add_argument(
        "--replace-stale",
        action="store_true",
        help="resume a store made the same way, replace one made differently (for workflows)",
    )
    render.add_argument(
        "--ai4pain-layout",
        help="for --signal fnirs: the AI4Pain layout to read the files with, as a JSON object or file "
        "(default: the default layout; keys in docs/datasets.md)",
    )
    render.set_defaults(func=run_render)


def run_render(args: argparse.Namespace) -> int:
    from painformer.data import read_sample_table
    from painformer.errors import InputError
    from painformer.render.store import render_signal_store

    loader = None
    if args.ai4pain_layout:
        import functools

        from painformer.data.ai4pain import Ai4PainLayout
        from painformer.data.signals import load_signal

        if args.signal != "fnirs":
            raise InputError("--ai4pain-layout applies to --signal fnirs only")
        # The channels kept and the file format are the layout's, as when the tree was indexed.
        loader = functools.partial(load_signal, layout=Ai4PainLayout.from_json(args.ai4pain_layout))
    table = read_sample_table(args.samples)
    if table.empty:
        raise InputError(f"{args.samples}: the sample table is empty")
    store = render_signal_store(
        loader=loader,
        table=table,
        signal=args.signal,
        representation=args.representation,
        out=args.out,
        batch_size=args.batch_size,
        loader_threads=args.loader_threads,
        force="stale" if args.replace_stale else args.force,
        progress=not args.no_progress,
        complete_marker=args.complete_marker,
    )
    print(f"wrote {args.out} ({len(store)} samples, {args.signal}/{args.representation})")
    return 0
