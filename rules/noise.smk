# Gradient noise at every checkpoint of a run, streamed into the tail-index estimators.


rule measure_gradient_noise:
    input:
        data="resources/datasets/{dataset}.pt",
        checkpoints=f"{RUN_DIR}/checkpoints.pt",
        info=f"{RUN_DIR}/run.json",
    output:
        estimates=f"{RUN_DIR}/tail_index.csv",
        norms=f"{RUN_DIR}/noise_norms.csv",
        usage=f"benchmarks/measure_gradient_noise/{RUN_PATTERN}.tsv",  # time and memory (sgdtail.io)
    log:
        f"logs/measure_gradient_noise/{RUN_PATTERN}.log",
    group:
        run_group
    conda:
        "../envs/torch.yaml"
    threads: run_threads
    resources:
        mem_mb=noise_run_mem_mb,
        runtime=noise_runtime,
        gpu=run_gpus,
        group_slot=1,
    params:
        noise=NOISE_RESULTS,
        memory_budget=noise_budget_mb,
        estimators=config["estimators"],
        device=TRAINING["device"],
    script:
        "../scripts/measure_gradient_noise.py"


rule validate_estimators:
    output:
        table="results/validation/estimator_validation.csv",
        sweep="results/validation/synthetic_block_sweep.csv",
        gaussian="results/validation/gaussian_readings.csv",
        minimums="results/validation/min_samples.csv",
    log:
        "logs/validate_estimators.log",
    benchmark:
        "benchmarks/validate_estimators.tsv"
    priority: PRIORITY_SIDE
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=by_attempt(4000),
        runtime=by_attempt(30),
    params:
        validation=VALIDATION,
        estimators=config["estimators"],
    script:
        "../scripts/validate_estimators.py"
