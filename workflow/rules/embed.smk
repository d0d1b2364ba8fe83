# Stage 1: every image through the PainFormer backbone, cached per modality/representation.


rule embed:
    input:
        samples=SAMPLES,
        upstream=get_embed_upstream,
        checkpoint=get_backbone_checkpoint_input,
    output:
        f"{RESULTS}/embeddings/{{modality}}/{{representation}}.complete",
    log:
        f"{LOGS}/embed/{{modality}}/{{representation}}.log",
    benchmark:
        f"{BENCHMARKS}/embed/{{modality}}/{{representation}}.tsv"
    conda:
        CONDA_ENV
    threads: 2
    resources:
        mem_mb=4000,
        runtime=600,
        gpu=1,
    params:
        store=get_output_store,
        raw_inputs=get_embed_raw_state,
        source=get_embed_source_args,
        checkpoint=get_backbone_checkpoint,
        batch_size=config["backbone"]["batch_size"],
        device=config["backbone"]["device"],
        float16="--float16" if config["backbone"]["float16"] else "",
        precision=config["backbone"]["precision"],
        loader_threads=config["backbone"]["loader_threads"],
    shell:
        "painformer embed --samples {input.samples:q} --modality {wildcards.modality:q} "
        "--representation {wildcards.representation:q} {params.source} --checkpoint {params.checkpoint:q} "
        "--batch-size {params.batch_size:q} --device {params.device:q} --threads {threads} {params.float16} "
        "--precision {params.precision:q} --loader-threads {params.loader_threads:q} "
        "--out {params.store:q} --complete-marker {output:q} --replace-stale --no-progress > {log:q} 2>&1"
