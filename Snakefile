# painformer: automatic pain assessment with the PainFormer foundation model.
#
#   snakemake --cores N                              the embedded demo dataset (config/config.yaml)
#   snakemake --cores N --configfile config/biovid.yaml    BioVid Part A, the paper's grid
#
# Results layout (results/<dataset>/):
#   samples.tsv                          the sample table (one row per sample)
#   config.resolved.yaml                 the validated configuration of this run
#   images/<signal>/<representation>.zarr      biosignal images (224x224 RGB) [+ .complete marker]
#   frames/<thermal|depth>.zarr          synthetic thermal / estimated depth frames [+ .complete]
#   models/                              thermal generator, tiny depth model (when built here)
#   pretrain_tasks/, models/pretrain/    demo pretraining tasks, pretrained backbone (pretrain.enabled)
#   embeddings/<modality>/<representation>.zarr  PainFormer embeddings, (n_samples, n_items, 160) [+ .complete]
#   runs/<experiment>/fold-<fold>/       model.pt, predictions.tsv, metrics.json, history.tsv, config.json
#   tables/<experiment>.{tsv,json}       per-fold, pooled and per-subject metrics
#   plots/                               confusion matrices, per-subject accuracy, curves, summary bars
#   final/<experiment>/                  final models (config key final): model.safetensors, config.json, README.md
#   summary.tsv, summary.md              all experiments in the paper's table form, paired tests
#   attention/<modality>/<representation>.png  attention-map sheets of a few samples (Fig. 5)
#   logs/, benchmarks/                   one log (and timing for heavy rules) per job

from snakemake.utils import min_version

min_version("9.0")


# The demo configuration is the default; a --configfile replaces it entirely rather than
# being merged into it (so a real dataset's run never inherits the demo's experiments).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/biosignals.smk"
include: "workflow/rules/frames.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/embed.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/final.smk"
include: "workflow/rules/interpret.smk"


rule all:
    default_target: True
    input:
        f"{RESULTS}/config.resolved.yaml",
        f"{RESULTS}/summary.tsv",
        f"{RESULTS}/summary.md",
        ATTENTION_MAPS,
        FINAL_MODELS,
