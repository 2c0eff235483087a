"""sgdtail: the science of the workflow, with no Snakemake inside.

Modules: data (download/prepare datasets), models, losses, train (plain SGD),
noise (minibatch gradient noise), estimators (tail index), dynamics (Lévy vs
Brownian simulation), aggregate (tidy tables), figures (one declaration per
figure), plots (figures), io (atomic writes, provenance).
"""
