# The tail index of the iterates over the last iterates.window steps of each run: replayed
# from the state train_sgd saved at the window's start (sgdtail.iterates).


rule measure_iterates:
    input:
        data="resources/datasets/{dataset}.pt",
        snapshot=f"{RUN_DIR}/iterates_start.pt",
        checkpoints=f"{RUN_DIR}/checkpoints.pt",
        info=f"{RUN_DIR}/run.json",
    output:
        estimates=f"{RUN_DIR}/iterates_tail_index.csv",
        usage=f"benchmarks/measure_iterates/{RUN_PATTERN}.tsv",  # time and memory (sgdtail.io)
    log:
        f"logs/measure_iterates/{RUN_PATTERN}.log",
    conda:
        "../envs/torch.yaml"
    threads: run_threads
    resources:
        mem_mb=noise_run_mem_mb,
        runtime=iterates_runtime,
        gpu=run_gpus,
    params:
        memory_budget=noise_budget_mb,
        estimators=config["estimators"],
        device=TRAINING["device"],
    script:
        "../scripts/measure_iterates.py"


rule aggregate_iterates:
    input:
        estimates=run_files("iterates_tail_index.csv"),
        noise="results/tables/estimates.parquet",
        runs="results/tables/runs.csv",
    output:
        estimates="results/tables/iterates_estimates.csv",
        paired="results/tables/iterates_vs_noise.csv",
    log:
        "logs/aggregate_iterates.log",
    benchmark:
        "benchmarks/aggregate_iterates.tsv"
    priority: PRIORITY_SERIAL
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=runs_mem_mb(2000, 4),
        runtime=runs_runtime(10, 0.05),
    params:
        runs=run_metadata(),
        split=resolved_section(config, "claims")["split"],
        min_pooled_values=config["estimators"]["min_pooled_values"],
        robust_k1_factors=config["estimators"]["robust_k1_factors"],
    script:
        "../scripts/aggregate_iterates.py"
