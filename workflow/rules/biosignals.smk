# Biosignals become 224x224 images: waveform and three spectrograms.


rule biosignal_images:
    input:
        samples=SAMPLES,
    output:
        f"{RESULTS}/images/{{signal}}/{{representation}}.complete",
    log:
        f"{LOGS}/images/{{signal}}/{{representation}}.log",
    benchmark:
        f"{BENCHMARKS}/images/{{signal}}/{{representation}}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        store=get_output_store,
        raw_inputs=raw_files_state("biosignals"),
        layout=get_fnirs_layout_arg,
    shell:
        "painformer render-biosignals --samples {input.samples:q} --signal {wildcards.signal:q} "
        "--representation {wildcards.representation:q} --out {params.store:q} "
        "--complete-marker {output:q} --replace-stale {params.layout} > {log:q} 2>&1"
