# The dataset: generate the demo tree when configured, index it into the sample table.


if DATASET["demo"]:

    rule demo_data:
        output:
            os.path.join(DATASET["root"], "samples.csv"),
        log:
            f"{LOGS}/demo_data.log",
        benchmark:
            f"{BENCHMARKS}/demo_data.tsv"
        conda:
            CONDA_ENV
        threads: 2
        resources:
            mem_mb=2000,
            runtime=30,
        params:
            root=get_first_output_dir,
            subjects=DATASET["demo"].get("subjects", 6),
            samples_per_class=DATASET["demo"].get("samples_per_class", 4),
            seed=DATASET["demo"].get("seed", 0),
            signal=get_demo_signal_args,
        shell:
            "painformer demo-data {params.root:q} --subjects {params.subjects:q} "
            "--samples-per-class {params.samples_per_class:q} --seed {params.seed:q} "
            "{params.signal} --workers {threads} > {log:q} 2>&1"


if DATASET["samples"]:

    checkpoint index:
        input:
            DATASET["samples"],
        output:
            samples=SAMPLES,
        log:
            f"{LOGS}/index.log",
        conda:
            CONDA_ENV
        threads: 1
        resources:
            mem_mb=1000,
            runtime=10,
        script:
            "../scripts/check_samples.py"

else:

    checkpoint index:
        input:
            get_dataset_samples_csv,
        output:
            samples=SAMPLES,
            bad_samples=f"{RESULTS}/bad_samples.tsv",
        log:
            f"{LOGS}/index.log",
        conda:
            CONDA_ENV
        threads: 1
        resources:
            mem_mb=2000,
            runtime=30,
        params:
            dataset_format=DATASET["format"],
            root=DATASET["root"],
            biosignals=DATASET["biosignals"],
            classes=",".join(DATASET["classes"] or []),
            on_bad_sample=DATASET["on_bad_sample"],
            name=DATASET["name"],
            layout=get_ai4pain_layout_arg,
            decoder=VIDEO_DECODER,
        shell:
            "painformer index --dataset {params.dataset_format:q} --name {params.name:q} --root {params.root:q} "
            "--biosignals {params.biosignals:q} --classes {params.classes:q} "
            "--on-bad-sample {params.on_bad_sample:q} --report {output.bad_samples:q} {params.layout} "
            "--decoder {params.decoder:q} --out {output.samples:q} > {log:q} 2>&1"


rule resolved_config:
    output:
        f"{RESULTS}/config.resolved.yaml",
    log:
        f"{LOGS}/resolved_config.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        resolved=config,
    script:
        "../scripts/write_yaml.py"
