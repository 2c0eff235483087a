# Sharpness of the minima the SGD runs reach, against their tail index (claim C6).


rule measure_sharpness:
    input:
        data="resources/datasets/{dataset}.pt",
        checkpoints=f"{RUN_DIR}/checkpoints.pt",
        info=f"{RUN_DIR}/run.json",
    output:
        sharpness=f"{RUN_DIR}/sharpness.json",
        usage=f"benchmarks/measure_sharpness/{RUN_PATTERN}.tsv",  # time and memory (sgdtail.io)
    log:
        f"logs/measure_sharpness/{RUN_PATTERN}.log",
    group:
        sharpness_group
    conda:
        "../envs/torch.yaml"
    threads: run_threads
    resources:
        mem_mb=sharpness_mem_mb,
        runtime=sharpness_runtime,
        gpu=run_gpus,
        group_slot=1,
    params:
        sharpness=SHARPNESS,
        device=TRAINING["device"],
    script:
        "../scripts/measure_sharpness.py"


rule plot_sharpness_vs_alpha:
    input:
        sharpness=run_files("sharpness.json"),
        summary="results/tables/summary.csv",
    output:
        table="results/tables/sharpness.csv",
        claim="results/sharpness/claim_C6.json",
        pdf="figures/sharpness_vs_alpha.pdf",
        png=figure_png("sharpness_vs_alpha"),
    log:
        "logs/plot_sharpness_vs_alpha.log",
    priority: PRIORITY_UNLOCKS
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=runs_mem_mb(2000, 2),
        runtime=runs_runtime(10, 0.02),
    params:
        runs=run_metadata(),
        sharpness=SHARPNESS,
    script:
        "../scripts/plot_sharpness_vs_alpha.py"
