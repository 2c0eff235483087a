# One tidy table from every run of the grid.


rule aggregate_results:
    input:
        infos=run_files("run.json"),
        metrics=run_files("checkpoint_metrics.csv"),
        estimates=run_files("tail_index.csv"),
        norms=run_files("noise_norms.csv"),
    output:
        estimates="results/tables/estimates.parquet",
        summary="results/tables/summary.csv",
        runs="results/tables/runs.csv",
        norms="results/tables/noise_norms.parquet",
    log:
        "logs/aggregate_results.log",
    benchmark:
        "benchmarks/aggregate_results.tsv"
    priority: PRIORITY_SERIAL
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=runs_mem_mb(2000, 4),
        runtime=runs_runtime(10, 0.05),
    params:
        runs=run_metadata(),
        min_train_accuracy=resolved_section(config, "claims")["min_train_accuracy"],
        estimators=config["estimators"],
    script:
        "../scripts/aggregate_results.py"
