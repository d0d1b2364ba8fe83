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
        epochs=config["thermal"]["train"]["epochs"],
        image_size=config["thermal"]["train"]["image_size"],
        batch_size=config["thermal"]["train"]["batch_size"],
        seed=config["thermal"]["train"]["seed"],
        lr=config["thermal"]["train"]["lr"],
    shell:
        "painformer thermal train --pairs {params.pairs:q} --out {output:q} --epochs {params.epochs:q} "
        "--image-size {params.image_size:q} --batch-size {params.batch_size:q} --lr {params.lr:q} "
        "--seed {params.seed:q} --threads {threads} --replace-stale > {log:q} 2>&1"


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
        "painformer depth make-tiny {output:q} --seed 0 > {log:q} 2>&1"


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
        "painformer {wildcards.frame_model:q} apply --samples {input.samples:q} {params.model_flag:q} {input.model:q} "
        "{params.video} --out {params.store:q} "
        "--complete-marker {output:q} --replace-stale > {log:q} 2>&1"
