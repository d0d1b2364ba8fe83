# Optional multi-task pretraining of the backbone (docs/pretraining.md); with pretrain.enabled the
# embed jobs use its painformer.pth instead of backbone.checkpoint.

PRETRAIN = config.get("pretrain") or {}
PRETRAIN_TASKS_DIR = f"{RESULTS}/pretrain_tasks"
PRETRAIN_SIGNAL_IMAGES = (
    f"{PRETRAIN.get('signal', 'gsr')}_{PRETRAIN.get('representation', 'spec_psd')}"
)

if PRETRAIN.get("tasks") and PRETRAIN.get("training"):
    raise ValueError(
        f"pretrain.training only applies to the demo tasks built when pretrain.tasks is null; "
        f"put the training settings into {PRETRAIN['tasks']} instead"
    )


# Demo tasks from this dataset's own sample table: face identity, face pain and a biosignal
# pain task on the first subjects, probe files from the held-out last `probe_subjects`.
rule pretrain_tasks:
    input:
        samples=SAMPLES,
    output:
        tasks=f"{PRETRAIN_TASKS_DIR}/tasks.yaml",
        identity=f"{PRETRAIN_TASKS_DIR}/identity_frames.h5",
        pain_frames=f"{PRETRAIN_TASKS_DIR}/pain_frames.h5",
        pain_signal=f"{PRETRAIN_TASKS_DIR}/pain_{PRETRAIN_SIGNAL_IMAGES}.h5",
        probe_frames=f"{PRETRAIN_TASKS_DIR}/probe_frames.h5",
        probe_signal=f"{PRETRAIN_TASKS_DIR}/probe_{PRETRAIN_SIGNAL_IMAGES}.h5",
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
        frames_per_video=PRETRAIN.get("frames_per_video", 4),
        signal=PRETRAIN.get("signal", "gsr"),
        representation=PRETRAIN.get("representation", "spec_psd"),
        probe_subjects=PRETRAIN.get("probe_subjects", 3),
    shell:
        "painformer pretrain make-demo-tasks --samples {input.samples} --out {params.out} "
        "--frames-per-video {params.frames_per_video} --signal {params.signal} "
        "--representation {params.representation} --probe-subjects {params.probe_subjects} > {log} 2>&1"


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
            {"training": PRETRAIN.get("training") or {}}, sort_keys=False
        ),
    shell:
        "(cat {input.tasks} && printf '%s' {params.training:q}) > {output} 2> {log}"


# --resume: a job stopped by its time limit continues from last.pt when rerun (last.pt and
# log.tsv are not declared outputs, so Snakemake leaves them in place). A run started with
# other tasks or settings is refused: delete the run folder to start over.
rule pretrain_backbone:
    input:
        tasks=PRETRAIN.get("tasks") or rules.pretrain_settings.output[0],
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
        epochs=f"--epochs {PRETRAIN['epochs']}" if PRETRAIN.get("epochs") else "",
        device=config["backbone"].get("device", "auto"),
        loader_workers=PRETRAIN.get("loader_workers", 0),
    shell:
        "painformer pretrain --tasks {input.tasks} --out {params.out} {params.epochs} "
        "--device {params.device} --threads {threads} --loader-workers {params.loader_workers} "
        "--resume > {log} 2>&1"
