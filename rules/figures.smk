# One rule per figure, drawn from the tidy tables.


rule plot_alpha_vs_width:
    input:
        summary="results/tables/summary.csv",
        runs="results/tables/runs.csv",
    output:
        pdf=report(
            "figures/alpha_vs_width.pdf",
            category="Tail index vs network size",
            caption="captions/alpha_vs_width.rst",
        ),
        png="figures/alpha_vs_width.png",
    log:
        "logs/plot_alpha_vs_width.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/plot_alpha_vs_width.py"
