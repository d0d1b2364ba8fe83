# Optional multi-task pretraining of the backbone (docs/pretraining.md); with pretrain.enabled the
# embed jobs use its painformer.pth instead of backbone.checkpoint.

PRETRAIN = config["pretrain"]
PRETRAIN_TASKS_DIR = f"{RESULTS}/pretrain_tasks"
PRETRAIN_SIGNALS = list(PRETRAIN["signals"])
PRETRAIN_REPRESENTATION = PRETRAIN["representation"]
# The demo tasks come from a dataset of their own (other synthetic people) when pretrain.demo
# is set, so that no subject evaluated later has had its labels seen by the backbone.
PRETRAIN_DEMO = PRETRAIN["demo"]

if PRETRAIN["tasks"] and PRETRAIN["training"]:
    raise ValueError(
        f"pretrain.training only applies to the demo tasks built when pretrain.tasks is null; "
        f"put the training settings into {PRETRAIN['tasks']} instead"
    )
PRETRAIN_DEMO_SEED = (PRETRAIN_DEMO or {}).get("seed", 1)
if PRETRAIN_DEMO and (DATASET["demo"] or {}).get("seed", 0) == PRETRAIN_DEMO_SEED:
    raise ValueError(
        f"pretrain.demo.seed {PRETRAIN_DEMO_SEED} equals dataset.demo.seed: the pretraining "
        "dataset would hold the very people the experiments evaluate; choose another seed"
    )


if PRETRAIN_DEMO:

    rule pretrain_demo_data:
        output:
            f"{PRETRAIN_DATA}/dataset/samples.csv",
        log:
            f"{LOGS}/pretrain_demo_data.log",
        benchmark:
            f"{BENCHMARKS}/pretrain_demo_data.tsv"
        conda:
            CONDA_ENV
        threads: 2
        resources:
            mem_mb=2000,
            runtime=30,
        params:
            root=get_first_output_dir,
            subjects=PRETRAIN_DEMO.get("subjects", 12),
            samples_per_class=PRETRAIN_DEMO.get("samples_per_class", 5),
            seed=PRETRAIN_DEMO_SEED,
        shell:
            "painformer demo-data {params.root:q} --subjects {params.subjects:q} "
            "--samples-per-class {params.samples_per_class:q} --seed {params.seed:q} "
            "--thermal-pairs 0 --workers {threads} > {log:q} 2>&1"

    rule pretrain_index:
        input:
            rules.pretrain_demo_data.output[0],
        output:
            samples=f"{PRETRAIN_DATA}/samples.tsv",
            bad_samples=f"{PRETRAIN_DATA}/bad_samples.tsv",
        log:
            f"{LOGS}/pretrain_index.log",
        conda:
            CONDA_ENV
        threads: 1
        resources:
            mem_mb=2000,
            runtime=30,
        params:
            root=f"{PRETRAIN_DATA}/dataset",
            name=f"{DATASET['name']}_pretrain",
            decoder=VIDEO_DECODER,
        shell:
            "painformer index --dataset biovid --name {params.name:q} --root {params.root:q} "
            "--classes BL1,PA4 --decoder {params.decoder:q} --report {output.bad_samples:q} "
            "--out {output.samples:q} > {log:q} 2>&1"


# Demo tasks from a sample table: face identity, face pain and one biosignal pain task per
# signal on the first subjects, probe files from the held-out last `probe_subjects`.
rule pretrain_tasks:
    input:
        samples=get_pretrain_samples,
    output:
        tasks=f"{PRETRAIN_TASKS_DIR}/tasks.yaml",
        identity=f"{PRETRAIN_TASKS_DIR}/identity_frames.h5",
        pain_frames=f"{PRETRAIN_TASKS_DIR}/pain_frames.h5",
        pain_signals=expand(
            f"{PRETRAIN_TASKS_DIR}/pain_{{signal}}_{PRETRAIN_REPRESENTATION}.h5",
            signal=PRETRAIN_SIGNALS,
        ),
        probe_frames=f"{PRETRAIN_TASKS_DIR}/probe_frames.h5",
        probe_signals=expand(
            f"{PRETRAIN_TASKS_DIR}/probe_{{signal}}_{PRETRAIN_REPRESENTATION}.h5",
            signal=PRETRAIN_SIGNALS,
        ),
    log:
        f"{LOGS}/pretrain_tasks.log",
    benchmark:
        f"{BENCHMARKS}/pretrain_tasks.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        out=get_first_output_dir,
        frames_per_video=PRETRAIN["frames_per_video"],
        frame_window=" ".join(str(f) for f in PRETRAIN["frame_window"]),
        signals=" ".join(PRETRAIN_SIGNALS),
        representation=PRETRAIN_REPRESENTATION,
        probe_subjects=PRETRAIN["probe_subjects"],
        decoder=VIDEO_DECODER,
    shell:
        "painformer pretrain make-demo-tasks --samples {input.samples:q} --out {params.out:q} "
        "--frames-per-video {params.frames_per_video:q} --frame-window {params.frame_window} "
        "--signal {params.signals} --representation {params.representation:q} "
        "--probe-subjects {params.probe_subjects:q} --decoder {params.decoder:q} > {log:q} 2>&1"


# The demo tasks.yaml names the task files only; append pretrain.training as its `training`
# section (Table IV defaults for every key left out) so that a demo-sized run needs no
# hand-written tasks file.
rule pretrain_settings:
    input:
        tasks=rules.pretrain_tasks.output.tasks,
    output:
        f"{PRETRAIN_TASKS_DIR}/pretrain.yaml",
    log:
        f"{LOGS}/pretrain_settings.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        training=yaml.safe_dump(
            {"training": PRETRAIN["training"] or {}}, sort_keys=False
        ),
    shell:
        "(cat {input.tasks:q} && printf '%s' {params.training:q}) > {output:q} 2> {log:q}"


# --resume: a job stopped by its time limit continues from last.pt when rerun (last.pt and
# log.tsv are not declared outputs, so Snakemake leaves them in place). A run started with
# other tasks or settings is refused: delete the run folder to start over.
rule pretrain_backbone:
    input:
        tasks=PRETRAIN["tasks"] or rules.pretrain_settings.output[0],
    output:
        backbone=f"{RESULTS}/models/pretrain/painformer.pth",
    log:
        f"{LOGS}/pretrain_backbone.log",
    benchmark:
        f"{BENCHMARKS}/pretrain_backbone.tsv"
    conda:
        CONDA_ENV
    threads: 4
    resources:
        mem_mb=16000,
        runtime=1440,
        gpu=1,
    params:
        out=get_first_output_dir,
        epochs=f"--epochs {PRETRAIN['epochs']}" if PRETRAIN["epochs"] else "",
        device=config["backbone"]["device"],
        loader_workers=PRETRAIN["loader_workers"],
    shell:
        "painformer pretrain --tasks {input.tasks:q} --out {params.out:q} {params.epochs} "
        "--device {params.device:q} --threads {threads} --loader-workers {params.loader_workers:q} "
        "--resume > {log:q} 2>&1"
