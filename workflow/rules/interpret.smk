# Attention maps (paper Fig. 5) of a few samples, one sheet per modality/representation in use.

ATTENTION_MAPS = [
    f"{RESULTS}/attention/{name}.png"
    for name in sorted({name for e in EXPERIMENTS.values() for name in e.inputs})
]


rule attention_maps:
    input:
        samples=SAMPLES,
        upstream=get_embed_upstream,
        checkpoint=get_backbone_checkpoint_input,
    output:
        report(
            f"{RESULTS}/attention/{{modality}}/{{representation}}.png",
            category="Attention maps",
            subcategory="{modality}",
        ),
    log:
        f"{LOGS}/attention/{{modality}}/{{representation}}.log",
    benchmark:
        f"{BENCHMARKS}/attention/{{modality}}/{{representation}}.tsv"
    conda:
        CONDA_ENV
    threads: 2
    resources:
        mem_mb=3000,
        runtime=30,
        gpu=1,
    params:
        source=get_embed_source_args,
        checkpoint=get_backbone_checkpoint,
        samples=config["report"]["attention_samples"],
        max_items=config["report"]["attention_frames"],
        device=config["backbone"]["device"],
    shell:
        "painformer attention --samples {input.samples:q} --modality {wildcards.modality:q} "
        "--representation {wildcards.representation:q} {params.source} --checkpoint {params.checkpoint:q} "
        "--pick {params.samples:q} --max-items {params.max_items:q} --device {params.device:q} "
        "--threads {threads} --sheet {output:q} > {log:q} 2>&1"
