# One rule per figure, drawn from the tidy tables; the claims table; the report's front page.
# Each figure is written as PDF and PNG; only the PNG is registered with report() (it renders
# inline in the HTML report), so `snakemake --report` lists every figure once.
# rule all asks only for the figures the selected grid can draw (figure_targets() in
# common.smk); asking for another one fails with a message naming the runs to add.


report: "captions/workflow.rst"


rule plot_noise_norm_histogram:
    input:
        norms="results/tables/noise_norms.parquet",
        summary="results/tables/summary.csv",
    output:
        pdf="figures/noise_norm_histogram.pdf",
        png=report(
            "figures/noise_norm_histogram.png",
            category="Noise and estimators",
            caption="captions/noise_norm_histogram.rst",
            labels={"figure": "noise_norm_histogram"},
        ),
    log:
        "logs/plot_noise_norm_histogram.log",
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=runs_mem_mb(2000, 2),
        runtime=runs_runtime(10, 0.02),
    params:
        showcase=showcase_runs(),
        seed=figure_settings()["seed"],
        max_synthetic_values=figure_settings()["max_synthetic_values"],
    script:
        "../scripts/plot_noise_norm_histogram.py"


rule plot_estimator_validation:
    input:
        table="results/validation/estimator_validation.csv",
        gaussian="results/validation/gaussian_readings.csv",
        minimums="results/validation/min_samples.csv",
    output:
        pdf="figures/estimator_validation.pdf",
        png=report(
            "figures/estimator_validation.png",
            category="Noise and estimators",
            caption="captions/estimator_validation.rst",
            labels={"figure": "estimator_validation"},
        ),
    log:
        "logs/plot_estimator_validation.log",
    priority: PRIORITY_SIDE
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=runs_mem_mb(2000, 2),
        runtime=runs_runtime(10, 0.02),
    script:
        "../scripts/plot_estimator_validation.py"


rule plot_alpha_vs_width:
    input:
        unpack(
            figure_input(
                "alpha_vs_width",
                summary="results/tables/summary.csv",
                runs="results/tables/runs.csv",
            )
        ),
    output:
        pdf="figures/alpha_vs_width.pdf",
        png=report(
            "figures/alpha_vs_width.png",
            category="Tail index vs network size",
            caption="captions/alpha_vs_width.rst",
            labels={"figure": "alpha_vs_width"},
        ),
    log:
        "logs/plot_alpha_vs_width.log",
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=runs_mem_mb(2000, 2),
        runtime=runs_runtime(10, 0.02),
    script:
        "../scripts/plot_alpha_vs_width.py"


rule plot_alpha_vs_depth:
    input:
        unpack(
            figure_input(
                "alpha_vs_depth",
                summary="results/tables/summary.csv",
                runs="results/tables/runs.csv",
            )
        ),
    output:
        pdf="figures/alpha_vs_depth.pdf",
        png=report(
            "figures/alpha_vs_depth.png",
            category="Tail index vs network size",
            caption="captions/alpha_vs_depth.rst",
            labels={"figure": "alpha_vs_depth"},
        ),
    log:
        "logs/plot_alpha_vs_depth.log",
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=runs_mem_mb(2000, 2),
        runtime=runs_runtime(10, 0.02),
    script:
        "../scripts/plot_alpha_vs_depth.py"


rule plot_alpha_vs_filters:
    input:
        unpack(
            figure_input(
                "alpha_vs_filters",
                summary="results/tables/summary.csv",
                runs="results/tables/runs.csv",
            )
        ),
    output:
        pdf="figures/alpha_vs_filters.pdf",
        png=report(
            "figures/alpha_vs_filters.png",
            category="Tail index vs network size",
            caption="captions/alpha_vs_filters.rst",
            labels={"figure": "alpha_vs_filters"},
        ),
    log:
        "logs/plot_alpha_vs_filters.log",
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=runs_mem_mb(2000, 2),
        runtime=runs_runtime(10, 0.02),
    script:
        "../scripts/plot_alpha_vs_filters.py"


rule plot_alpha_vs_batch_size:
    input:
        unpack(
            figure_input(
                "alpha_vs_batch_size",
                summary="results/tables/summary.csv",
                runs="results/tables/runs.csv",
            )
        ),
    output:
        pdf="figures/alpha_vs_batch_size.pdf",
        png=report(
            "figures/alpha_vs_batch_size.png",
            category="Tail index vs batch size and learning rate",
            caption="captions/alpha_vs_batch_size.rst",
            labels={"figure": "alpha_vs_batch_size"},
        ),
    log:
        "logs/plot_alpha_vs_batch_size.log",
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=runs_mem_mb(2000, 2),
        runtime=runs_runtime(10, 0.02),
    script:
        "../scripts/plot_alpha_vs_batch_size.py"


rule plot_alpha_vs_learning_rate:
    input:
        unpack(
            figure_input(
                "alpha_vs_learning_rate",
                summary="results/tables/summary.csv",
                runs="results/tables/runs.csv",
            )
        ),
    output:
        pdf="figures/alpha_vs_learning_rate.pdf",
        png=report(
            "figures/alpha_vs_learning_rate.png",
            category="Tail index vs batch size and learning rate",
            caption="captions/alpha_vs_learning_rate.rst",
            labels={"figure": "alpha_vs_learning_rate"},
        ),
    log:
        "logs/plot_alpha_vs_learning_rate.log",
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=runs_mem_mb(2000, 2),
        runtime=runs_runtime(10, 0.02),
    script:
        "../scripts/plot_alpha_vs_learning_rate.py"


rule plot_alpha_and_accuracy_over_training:
    input:
        unpack(
            figure_input(
                "alpha_and_accuracy_over_training",
                summary="results/tables/summary.csv",
                train_logs=showcase_files("train_log.csv"),
            )
        ),
    output:
        pdf="figures/alpha_and_accuracy_over_training.pdf",
        png=report(
            "figures/alpha_and_accuracy_over_training.png",
            category="Training dynamics",
            caption="captions/alpha_and_accuracy_over_training.rst",
            labels={"figure": "alpha_and_accuracy_over_training"},
        ),
    log:
        "logs/plot_alpha_and_accuracy_over_training.log",
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=runs_mem_mb(2000, 2),
        runtime=runs_runtime(10, 0.02),
    params:
        showcase=showcase_runs(),
    script:
        "../scripts/plot_alpha_and_accuracy_over_training.py"


rule plot_alpha_vs_block_size:
    input:
        estimates="results/tables/estimates.parquet",
        synthetic="results/validation/synthetic_block_sweep.csv",
    output:
        pdf="figures/alpha_vs_block_size.pdf",
        png=report(
            "figures/alpha_vs_block_size.png",
            category="Noise and estimators",
            caption="captions/alpha_vs_block_size.rst",
            labels={"figure": "alpha_vs_block_size"},
        ),
    log:
        "logs/plot_alpha_vs_block_size.log",
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=runs_mem_mb(2000, 2),
        runtime=runs_runtime(10, 0.02),
    params:
        showcase=showcase_runs(),
    script:
        "../scripts/plot_alpha_vs_block_size.py"


rule plot_runtime_by_grid_axis:
    input:
        train=benchmark_files("train_sgd"),
        noise=benchmark_files("measure_gradient_noise"),
        runs="results/tables/runs.csv",
    output:
        pdf="figures/runtime_by_grid_axis.pdf",
        png=report(
            "figures/runtime_by_grid_axis.png",
            category="Runtime",
            caption="captions/runtime_by_grid_axis.rst",
            labels={"figure": "runtime_by_grid_axis"},
        ),
    log:
        "logs/plot_runtime_by_grid_axis.log",
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=runs_mem_mb(2000, 2),
        runtime=runs_runtime(10, 0.02),
    script:
        "../scripts/plot_runtime_by_grid_axis.py"


rule make_claims_table:
    input:
        summary="results/tables/summary.csv",
        estimates="results/tables/estimates.parquet",
        runs="results/tables/runs.csv",
        extra=extra_claim_files(),
    output:
        md="figures/claims.md",
        csv="figures/claims.csv",
        html=report(
            "figures/claims.html",
            category="Claims",
            caption="captions/claims.rst",
        ),
    log:
        "logs/make_claims_table.log",
    benchmark:
        "benchmarks/make_claims_table.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=runs_mem_mb(2000, 2),
        runtime=runs_runtime(10, 0.02),
    params:
        claims=resolved_section(config, "claims"),
        ci_level=config["estimators"]["ci_level"],
        robust_k1_factors=config["estimators"]["robust_k1_factors"],
    script:
        "../scripts/make_claims_table.py"


rule make_results_page:
    input:
        summary="results/tables/summary.csv",
        estimates="results/tables/estimates.parquet",
        runs="results/tables/runs.csv",
        claims="figures/claims.csv",
        validation="results/validation/estimator_validation.csv",
    output:
        md="figures/results.md",
    log:
        "logs/make_results_page.log",
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=runs_mem_mb(2000, 2),
        runtime=runs_runtime(10, 0.02),
    params:
        claims=resolved_section(config, "claims"),
        ci_level=config["estimators"]["ci_level"],
        robust_k1_factors=config["estimators"]["robust_k1_factors"],
        tolerance=VALIDATION["gaussian_tolerance"],
        grid=config["grid"],
    script:
        "../scripts/make_results_page.py"
