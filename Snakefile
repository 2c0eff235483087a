# The SGD tail-index workflow: data → train → noise → α → aggregate → figures.
# Şimşekli, Sagun & Gürbüzbalaban (ICML 2019) and Şimşekli et al. (2019); see README.md.


from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/noise.smk"
include: "rules/iterates.smk"
include: "rules/aggregate.smk"
include: "rules/figures.smk"
include: "rules/dynamics.smk"
include: "rules/sharpness.smk"


onstart:
    check_slurm_status_query(workflow)


rule all:
    default_target: True
    input:
        all_targets(),
