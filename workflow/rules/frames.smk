# Video modalities beyond RGB: synthetic thermal (cGAN) and estimated depth (Depth Anything).


rule thermal_generator:
    input:
        get_dataset_samples_csv,
    output:
        f"{RESULTS}/models/thermal_generator.pt",
    log:
        f"{LOGS}/thermal_generator.log",
    benchmark:
        f"{BENCHMARKS}/thermal_generator.tsv"
    conda:
        CONDA_ENV
    threads: 2
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=1,
    params:
        pairs=get_thermal_pairs,
        epochs=config.get("thermal", {}).get("train", {}).get("epochs", 4),
        image_size=config.get("thermal", {}).get("train", {}).get("image_size", 64),
        batch_size=config.get("thermal", {}).get("train", {}).get("batch_size", 16),
        seed=config.get("thermal", {}).get("train", {}).get("seed", 0),
        lr=config.get("thermal", {}).get("train", {}).get("lr", 2.0e-4),
    shell:
        "painformer thermal train --pairs {params.pairs} --out {output} --epochs {params.epochs} "
        "--image-size {params.image_size} --batch-size {params.batch_size} --lr {params.lr} "
        "--seed {params.seed} --threads {threads} > {log} 2>&1"


rule depth_tiny_model:
    output:
        directory(f"{RESULTS}/models/depth_tiny"),
    log:
        f"{LOGS}/depth_tiny_model.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "painformer depth make-tiny {output} --seed 0 > {log} 2>&1"


rule frames:
    input:
        samples=SAMPLES,
        model=get_frame_model,
    output:
        f"{RESULTS}/frames/{{frame_model}}.complete",
    log:
        f"{LOGS}/frames/{{frame_model}}.log",
    benchmark:
        f"{BENCHMARKS}/frames/{{frame_model}}.tsv"
    conda:
        CONDA_ENV
    threads: 2
    resources:
        mem_mb=4000,
        runtime=240,
        gpu=1,
    params:
        store=get_output_store,
        raw_inputs=raw_files_state("video"),
        video=get_video_args,
        model_flag=get_frame_model_flag,
    shell:
        "painformer {wildcards.frame_model} apply --samples {input.samples} {params.model_flag} {input.model} "
        "{params.video} --out {params.store} "
        "--complete-marker {output} --replace-stale > {log} 2>&1"
