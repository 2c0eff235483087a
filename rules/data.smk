# Data sets: fetch (download or check a local copy), then one canonical tensor file.


localrules:
    download_dataset,


rule download_dataset:
    output:
        "resources/datasets/{dataset}.manifest.json",
    log:
        "logs/download_dataset/{dataset}.log",
    priority: PRIORITY_SERIAL
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=by_attempt(2000),
        runtime=by_attempt(60),
    params:
        source=dataset_setting("source"),
        path=dataset_setting("path"),
    script:
        "../scripts/download_dataset.py"


rule prepare_dataset:
    input:
        "resources/datasets/{dataset}.manifest.json",
    output:
        "resources/datasets/{dataset}.pt",
    log:
        "logs/prepare_dataset/{dataset}.log",
    benchmark:
        "benchmarks/prepare_dataset/{dataset}.tsv"
    priority: PRIORITY_SERIAL
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=by_attempt(4000),
        runtime=by_attempt(30),
    params:
        mean=dataset_setting("mean"),
        std=dataset_setting("std"),
    script:
        "../scripts/prepare_dataset.py"
