# Lévy- versus Brownian-driven dynamics (figures 2 and 3, claims C4 and C5).


rule simulate_exit_times:
    output:
        sweep="results/dynamics/exit_times.csv",
        slopes="results/dynamics/exit_slopes.csv",
        elasticity="results/dynamics/height_elasticity.csv",
        claim="results/dynamics/claim_C4.json",
    log:
        "logs/simulate_exit_times.log",
    benchmark:
        "benchmarks/simulate_exit_times.tsv"
    priority: PRIORITY_SIDE
    conda:
        "../envs/torch.yaml"
    # worker processes; the result depends on the seed only (sgdtail.dynamics)
    threads: local_threads(2, LOCAL_CORES)
    resources:
        mem_mb=by_attempt(2000),
        runtime=by_attempt(60),
    params:
        dynamics=DYNAMICS,
    script:
        "../scripts/simulate_exit_times.py"


rule simulate_sample_paths:
    output:
        shares="results/dynamics/jump_shares.csv",
        slopes="results/dynamics/jump_share_slopes.csv",
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


# The C5 statistic on the measured gradient-noise norms of the runs that trained.
rule measure_sgd_jump_share:
    input:
        runs="results/tables/runs.csv",
        norms="results/tables/noise_norms.parquet",
    output:
        table="results/dynamics/sgd_jump_share.csv",
        claim="results/dynamics/claim_C5_sgd.json",
    log:
        "logs/measure_sgd_jump_share.log",
    benchmark:
        "benchmarks/measure_sgd_jump_share.tsv"
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
        "../scripts/measure_sgd_jump_share.py"


rule plot_dynamics:
    input:
        sweep="results/dynamics/exit_times.csv",
        paths="results/dynamics/sample_paths.npz",
        shares="results/dynamics/jump_shares.csv",
    output:
        height="figures/exit_time_vs_height.pdf",
        height_png=figure_png("exit_time_vs_height"),
        width="figures/exit_time_vs_width.pdf",
        width_png=figure_png("exit_time_vs_width"),
        paths="figures/levy_vs_brownian_paths.pdf",
        paths_png=figure_png("levy_vs_brownian_paths"),
        densities="figures/stable_densities.pdf",
        densities_png=figure_png("stable_densities"),
        metastability="figures/metastability.pdf",
        metastability_png=figure_png("metastability"),
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


# SGD on Gaussian linear regression, where eta/b's role is a theorem (claims C7a, C7b).
rule simulate_linear_sgd:
    output:
        simulation="results/linear_sgd/simulation.csv",
        theory="results/linear_sgd/theory.csv",
        c7a="results/linear_sgd/claim_C7a.json",
        c7b="results/linear_sgd/claim_C7b.json",
    log:
        "logs/simulate_linear_sgd.log",
    benchmark:
        "benchmarks/simulate_linear_sgd.tsv"
    priority: PRIORITY_SIDE
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=by_attempt(2000),
        runtime=by_attempt(30),
    params:
        linear_sgd=LINEAR_SGD,
    script:
        "../scripts/simulate_linear_sgd.py"
