# Metric tables per experiment, the summary in the paper's table form, plots.


# Whether the tables and the summary show each fold's linear probe (report.probe, default true).
PROBE_FLAG = (
    "--probe" if (config.get("report") or {}).get("probe", True) else "--no-probe"
)


# The experiment definition is an input too: Snakemake does not look through a missing
# intermediate file, so after a changed experiment whose folds then failed, the stale tables
# would otherwise count as up to date and the next run would not retrain the folds.
rule report_experiment:
    input:
        folds=get_fold_metrics,
        experiment=f"{RESULTS}/runs/{{experiment}}/experiment.yaml",
    output:
        tsv=report(
            f"{RESULTS}/tables/{{experiment}}.tsv",
            category="Experiments",
            subcategory="{experiment}",
        ),
        json=f"{RESULTS}/tables/{{experiment}}.json",
        confusion=report(
            f"{RESULTS}/plots/{{experiment}}_confusion.png",
            category="Experiments",
            subcategory="{experiment}",
        ),
        subjects=report(
            f"{RESULTS}/plots/{{experiment}}_subjects.png",
            category="Experiments",
            subcategory="{experiment}",
        ),
        curves=report(
            f"{RESULTS}/plots/{{experiment}}_curves.png",
            category="Experiments",
            subcategory="{experiment}",
        ),
    log:
        f"{LOGS}/tables/{{experiment}}.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        folds=get_fold_dirs,
        tables=get_tables_dir,
        plots=get_experiment_plots_dir,
        probe=PROBE_FLAG,
    shell:
        "painformer report experiment --experiment {wildcards.experiment:q} --folds {params.folds:q} "
        "--out-dir {params.tables:q} --plots-dir {params.plots:q} {params.probe:q} > {log:q} 2>&1"


rule summary:
    input:
        get_experiment_tables,
    output:
        tsv=report(f"{RESULTS}/summary.tsv", category="Summary"),
        markdown=report(f"{RESULTS}/summary.md", category="Summary"),
        compare=f"{RESULTS}/summary_compare.tsv",
        plot=report(f"{RESULTS}/plots/summary.png", category="Summary"),
    log:
        f"{LOGS}/summary.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        plots=get_summary_plots_dir,
        compare=get_compare_args,
        provenance=get_provenance_notes,
        probe=PROBE_FLAG,
    shell:
        "painformer report summary --experiments {input:q} --out {output.tsv:q} "
        "--markdown {output.markdown:q} --plots-dir {params.plots:q} {params.compare} "
        "{params.provenance} {params.probe:q} > {log:q} 2>&1"
