"""sgdtail: the science of the workflow, with no Snakemake inside.

Modules: data (download/prepare datasets), models, losses, train (plain SGD),
noise (minibatch gradient noise), estimators (tail index), dynamics (Lévy vs
Brownian simulation), aggregate (tidy tables), plots (figures), io (atomic
writes, provenance).
"""
