# One plain-SGD run per grid point.


rule train_sgd:
    input:
        data="resources/datasets/{dataset}.pt",
    output:
        checkpoints=f"{RUN_DIR}/checkpoints.pt",
        metrics=f"{RUN_DIR}/checkpoint_metrics.csv",
        train_log=f"{RUN_DIR}/train_log.csv",
        info=f"{RUN_DIR}/run.json",
    params:
        training=TRAINING,
        checkpoints=CHECKPOINTS,
    log:
        f"logs/train_sgd/{RUN_DIR.removeprefix('results/runs/')}.log",
    benchmark:
        f"benchmarks/train_sgd/{RUN_DIR.removeprefix('results/runs/')}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/train_sgd.py"
