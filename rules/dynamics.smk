# Lévy- versus Brownian-driven dynamics (figures 2 and 3, claims C4 and C5), and the
# sharpness of the minima the SGD runs reach (claim C6).


rule simulate_exit_times:
    output:
        sweep="results/dynamics/exit_times.csv",
        slopes="results/dynamics/exit_slopes.csv",
        claim="results/dynamics/claim_C4.json",
    log:
        "logs/simulate_exit_times.log",
    benchmark:
        "benchmarks/simulate_exit_times.tsv"
    priority: PRIORITY_SIDE
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=by_attempt(2000),
        runtime=by_attempt(60),
    params:
        dynamics=DYNAMICS,
    script:
        "../scripts/simulate_exit_times.py"


rule simulate_sample_paths:
    output:
        ratios="results/dynamics/jump_ratios.csv",
        claim="results/dynamics/claim_C5.json",
        paths="results/dynamics/sample_paths.npz",
    log:
        "logs/simulate_sample_paths.log",
    benchmark:
        "benchmarks/simulate_sample_paths.tsv"
    priority: PRIORITY_SIDE
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=by_attempt(2000),
        runtime=by_attempt(30),
    params:
        dynamics=DYNAMICS,
    script:
        "../scripts/simulate_sample_paths.py"


rule plot_dynamics:
    input:
        sweep="results/dynamics/exit_times.csv",
        paths="results/dynamics/sample_paths.npz",
    output:
        height=report(
            "figures/exit_time_vs_height.pdf",
            category="Lévy vs Brownian dynamics",
            caption="captions/exit_time_vs_height.rst",
        ),
        height_png="figures/exit_time_vs_height.png",
        width=report(
            "figures/exit_time_vs_width.pdf",
            category="Lévy vs Brownian dynamics",
            caption="captions/exit_time_vs_width.rst",
        ),
        width_png="figures/exit_time_vs_width.png",
        paths=report(
            "figures/levy_vs_brownian_paths.pdf",
            category="Lévy vs Brownian dynamics",
            caption="captions/levy_vs_brownian_paths.rst",
        ),
        paths_png="figures/levy_vs_brownian_paths.png",
        densities=report(
            "figures/stable_densities.pdf",
            category="Lévy vs Brownian dynamics",
            caption="captions/stable_densities.rst",
        ),
        densities_png="figures/stable_densities.png",
        metastability=report(
            "figures/metastability.pdf",
            category="Lévy vs Brownian dynamics",
            caption="captions/metastability.rst",
        ),
        metastability_png="figures/metastability.png",
    log:
        "logs/plot_dynamics.log",
    priority: PRIORITY_SIDE
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=by_attempt(2000),
        runtime=by_attempt(15),
    params:
        dynamics=DYNAMICS,
    script:
        "../scripts/plot_dynamics.py"


rule measure_sharpness:
    input:
        data="resources/datasets/{dataset}.pt",
        checkpoints=f"{RUN_DIR}/checkpoints.pt",
        info=f"{RUN_DIR}/run.json",
    output:
        f"{RUN_DIR}/sharpness.json",
    log:
        f"logs/measure_sharpness/{RUN_PATH}.log",
    benchmark:
        f"benchmarks/measure_sharpness/{RUN_PATH}.tsv"
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
        pdf=report(
            "figures/sharpness_vs_alpha.pdf",
            category="Width of the minima",
            caption="captions/sharpness_vs_alpha.rst",
        ),
        png="figures/sharpness_vs_alpha.png",
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
