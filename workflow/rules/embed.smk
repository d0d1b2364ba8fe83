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
        batch_size=config["backbone"].get("batch_size", 16),
        device=config["backbone"].get("device", "auto"),
        float16="--float16" if config["backbone"].get("float16") else "",
    shell:
        "painformer embed --samples {input.samples} --modality {wildcards.modality} "
        "--representation {wildcards.representation} {params.source} --checkpoint {params.checkpoint} "
        "--batch-size {params.batch_size} --device {params.device} --threads {threads} {params.float16} "
        "--out {params.store} --complete-marker {output} --replace-stale --no-progress > {log} 2>&1"
