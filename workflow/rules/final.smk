# Final models: each experiment named in `final` trained once more on every subject of its task,
# written as a self-contained folder (weights, config, model card) for `painformer predict`.
# The LOSO table is an input so that the model card can quote the experiment's results.
FINAL_EXPERIMENTS = (
    sorted(EXPERIMENTS)
    if config.get("final") == "all"
    else list(config.get("final") or [])
)
_unknown_final = sorted(set(FINAL_EXPERIMENTS) - set(EXPERIMENTS))
if _unknown_final:
    raise ValueError(
        f"config key 'final': unknown experiment(s) {_unknown_final}; experiments are {sorted(EXPERIMENTS)}"
    )
FINAL_MODELS = [
    f"{RESULTS}/final/{name}/{file}"
    for name in FINAL_EXPERIMENTS
    for file in ("model.safetensors", "config.json", "README.md")
]


rule final_model:
    input:
        experiment=f"{RESULTS}/runs/{{experiment}}/experiment.yaml",
        samples=SAMPLES,
        embeddings=get_experiment_embeddings,
        summary=get_final_summary,
        frame_models=get_final_frame_models,
    output:
        model=f"{RESULTS}/final/{{experiment}}/model.safetensors",
        config=f"{RESULTS}/final/{{experiment}}/config.json",
        card=f"{RESULTS}/final/{{experiment}}/README.md",
    log:
        f"{LOGS}/final/{{experiment}}.log",
    benchmark:
        f"{BENCHMARKS}/final/{{experiment}}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=get_final_mem_mb,
        runtime=120,
    params:
        embeddings=f"{RESULTS}/embeddings",
        device=TRAIN_DEVICE,
        out_dir=get_first_output_dir,
        dataset=DATASET["name"],
        frame_models=get_final_frame_model_args,
        dataset_format=DATASET["format"],
        layout=get_ai4pain_layout_arg,
    shell:
        "painformer train --config {input.experiment:q} --experiment {wildcards.experiment:q} --final "
        "--samples {input.samples:q} --embeddings {params.embeddings:q} --out {params.out_dir:q} "
        "--summary {input.summary:q} --dataset {params.dataset:q} --threads {threads} "
        "--device {params.device:q} --dataset-format {params.dataset_format:q} {params.layout} "
        "{params.frame_models} > {log:q} 2>&1"
