"""sgdtail: the science of the workflow, with no Snakemake inside.

Modules: data (download/prepare datasets), models, losses, train (plain SGD),
noise (minibatch gradient noise), estimators (tail index), dynamics (Lévy vs
Brownian simulation), dynamics_claims (C4, C5 fits and verdicts), verdicts (the
verdict vocabulary of every claim), aggregate (tidy tables), figures (one declaration
per figure), plots and plots_dynamics (figures), io (atomic writes, provenance).
"""
