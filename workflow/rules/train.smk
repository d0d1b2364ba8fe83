# Stage 2: one Embedding-Mixer per experiment and fold, trained on cached embeddings.


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
        metrics=f"{RESULTS}/runs/{{experiment}}/fold-{{fold}}/metrics.json",
        predictions=f"{RESULTS}/runs/{{experiment}}/fold-{{fold}}/predictions.tsv",
        history=f"{RESULTS}/runs/{{experiment}}/fold-{{fold}}/history.tsv",
        model=f"{RESULTS}/runs/{{experiment}}/fold-{{fold}}/model.pt",
        config=f"{RESULTS}/runs/{{experiment}}/fold-{{fold}}/config.json",
    log:
        f"{LOGS}/runs/{{experiment}}/fold-{{fold}}.log",
    benchmark:
        f"{BENCHMARKS}/runs/{{experiment}}/fold-{{fold}}.tsv"
    group:
        "train"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=3000,
        runtime=120,
        gpu=get_train_gpus,
    params:
        embeddings=f"{RESULTS}/embeddings",
        device=TRAIN_DEVICE,
        out_dir=f"{RESULTS}/runs/{{experiment}}/fold-{{fold}}",
    shell:
        "painformer train --config {input.experiment} --experiment {wildcards.experiment} "
        "--fold {wildcards.fold} --samples {input.samples} --embeddings {params.embeddings} "
        "--out {params.out_dir} --threads {threads} --device {params.device} > {log} 2>&1"
