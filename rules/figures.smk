# The figures drawn from the tidy tables, one rule each, from their declarations in
# sgdtail.figures; the claims table; the report's front page. Each figure is written as PDF
# and PNG; only the PNG is registered with report() (it renders inline in the HTML report),
# so `snakemake --report` lists every figure once. rule all asks only for the figures the
# selected grid can draw (figure_targets() in common.smk); asking for another one fails with
# a message naming the runs to add.


report: "captions/workflow.rst"


# Rule plot_<name> of each figure drawn by a rule of its own (sgdtail.figures). The script
# path is filled in from params.script when the job runs, by which time `figure` is the loop's
# last value.
for figure in PLOT_RULE_FIGURES:

    rule:
        name:
            f"plot_{figure.name}"
        input:
            unpack(figure_input(figure)),
        output:
            pdf=figure.pdf,
            png=figure_png(figure.name),
        log:
            f"logs/plot_{figure.name}.log",
        priority: PRIORITY_SIDE if figure.side else 0
        conda:
            "../envs/torch.yaml"
        threads: 1
        resources:
            mem_mb=runs_mem_mb(2000, 2),
            runtime=runs_runtime(10, 0.02),
        params:
            **figure_params(figure),
        script:
            "../scripts/{params.script}.py"


rule make_claims_table:
    input:
        summary="results/tables/summary.csv",
        estimates="results/tables/estimates.parquet",
        runs="results/tables/runs.csv",
        sharpness="results/tables/sharpness.csv",
        iterates=iterates_table(),
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
