# One training run per grid point (plain SGD unless the grid point names another optimizer).


rule train_sgd:
    input:
        data="resources/datasets/{dataset}.pt",
    output:
        **iterates_snapshot_output(),
        checkpoints=f"{RUN_DIR}/checkpoints.pt",
        metrics=f"{RUN_DIR}/checkpoint_metrics.csv",
        train_log=f"{RUN_DIR}/train_log.csv",
        info=f"{RUN_DIR}/run.json",
        usage=f"benchmarks/train_sgd/{RUN_PATTERN}.tsv",  # time and memory (sgdtail.io)
    log:
        f"logs/train_sgd/{RUN_PATTERN}.log",
    priority: PRIORITY_UNLOCKS
    group:
        run_group
    conda:
        "../envs/torch.yaml"
    threads: run_threads
    resources:
        mem_mb=train_mem_mb,
        runtime=train_runtime,
        gpu=run_gpus,
        group_slot=1,
    params:
        **iterates_params(),
        training=run_training_of,
        checkpoints=run_checkpoints_of,
    script:
        "../scripts/train_sgd.py"
