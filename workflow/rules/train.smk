# Stage 2: one Embedding-Mixer per experiment and fold, trained on cached embeddings. The folds
# of an experiment train in groups of training.folds_per_job, each group one job that trains its
# folds together (stacked) and writes every fold folder runs/<experiment>/fold-<fold>/, then the
# group's marker. Folds are only known after the index checkpoint, so the rule's output is the
# marker; the report waits for all markers of its experiment.


rule experiment_definition:
    output:
        f"{RESULTS}/runs/{{experiment}}/experiment.yaml",
    log:
        f"{LOGS}/runs/{{experiment}}/experiment_definition.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        resolved=get_experiment_definition,
    script:
        "../scripts/write_yaml.py"


rule train:
    input:
        experiment=f"{RESULTS}/runs/{{experiment}}/experiment.yaml",
        samples=SAMPLES,
        embeddings=get_experiment_embeddings,
    output:
        marker=f"{RESULTS}/runs/{{experiment}}/groups/{{fold_group}}.json",
    log:
        f"{LOGS}/runs/{{experiment}}/{{fold_group}}.log",
    benchmark:
        f"{BENCHMARKS}/runs/{{experiment}}/{{fold_group}}.tsv"
    group:
        "train"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=get_train_mem_mb,
        runtime=get_train_runtime,
        gpu=get_train_gpus,
        gpu_slots=get_train_gpu_slots,
    params:
        folds=get_group_folds,
        embeddings=f"{RESULTS}/embeddings",
        device=TRAIN_DEVICE,
        compile="--compile" if TRAINING.compile else "",
        out_dir=get_experiment_run_dir,
    shell:
        "painformer train --config {input.experiment:q} --experiment {wildcards.experiment:q} "
        "--folds {params.folds:q} --samples {input.samples:q} --embeddings {params.embeddings:q} "
        "--out {params.out_dir:q} --marker {output.marker:q} --threads {threads} "
        "--device {params.device:q} {params.compile} > {log:q} 2>&1"
