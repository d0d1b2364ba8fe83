# The dataset: generate the demo tree when configured, index it into the sample table.


if DATASET.get("demo"):

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
            "painformer demo-data {params.root} --subjects {params.subjects} "
            "--samples-per-class {params.samples_per_class} --seed {params.seed} "
            "{params.signal} --workers {threads} > {log} 2>&1"


if DATASET.get("samples"):

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
            biosignals=DATASET.get("biosignals", "filtered"),
            classes=",".join(DATASET.get("classes") or []),
            on_bad_sample=DATASET.get("on_bad_sample", "fail"),
            name=DATASET["name"],
            layout=get_ai4pain_layout_arg,
            decoder=VIDEO_DECODER,
        shell:
            "painformer index --dataset {params.dataset_format} --name {params.name} --root {params.root} "
            "--biosignals {params.biosignals} --classes '{params.classes}' "
            "--on-bad-sample {params.on_bad_sample} --report {output.bad_samples} {params.layout} "
            "--decoder {params.decoder} --out {output.samples} > {log} 2>&1"


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
