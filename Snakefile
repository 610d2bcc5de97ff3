# The grid as a Snakemake workflow, for clusters and many GPUs: same runs, same notebooks, same cache as
# `asgt batch` (the grid comes from asgt_lib.pipeline.batch.plan and each job runs asgt_lib.pipeline.batch.execute).
#
#   snakemake -j 4 --config preset=quick                                  # locally, 4 runs at a time
#   snakemake -j 100 --executor slurm --default-resources slurm_partition=gpu gpu=1 --config preset=paper
#                                                                          # SLURM (snakemake-executor-plugin-slurm)
# After the runs, rule `audit` checks every model (as `asgt audit`) and writes <results>/<preset>/audit-verdicts.csv.
# Options (--config key=value): preset, datasets (comma-separated), only (run-file names, comma-separated),
# results_dir, notebooks_dir, data_dir, params_dir, device.
import os
import re

from asgt_lib.core.data import default_data_dir
from asgt_lib.pipeline import batch
from asgt_lib.pipeline.experiment import default_results_dir

PRESET = config.get("preset", "quick")
RESULTS = config.get("results_dir") or str(default_results_dir())
NOTEBOOKS = config.get("notebooks_dir") or str(batch.default_notebooks_dir())
DATA = config.get("data_dir") or str(default_data_dir())
PARAMS = config.get("params_dir")
DEVICE = config.get("device")
_split = lambda key: [v for v in str(config.get(key, "")).split(",") if v] or None
JOBS = {str(job.notebook): job for job in batch.plan(PRESET, _split("datasets"), _split("only"), DATA, RESULTS,
                                                        PARAMS, NOTEBOOKS)}


AUDIT = os.path.join(RESULTS, PRESET, "audit-verdicts.csv")


rule all:
    input:
        list(JOBS),
        AUDIT,


rule run_notebook:
    output:
        "{notebook}",
    wildcard_constraints:
        notebook="|".join(re.escape(path) for path in JOBS),
    threads: 2
    run:
        job = JOBS[output[0]]
        title, seconds, error = batch.execute(job, batch.notebook_parameters(job, DATA, RESULTS, PARAMS), threads,
                                              DEVICE)
        if error:
            raise RuntimeError(f"run {title} failed: {error}")
        print(f"{title}: {seconds:.1f} s")


rule audit:
    """Robustness sanity checks and saliency faithfulness of every run (asgt_lib.judgement.audit; cached per run): what
    the pages "Is the robustness real?" and "Are the maps better?" show. Writes the verdict table."""
    input:
        list(JOBS),
    output:
        AUDIT,
    threads: 2
    run:
        from asgt_lib.judgement.audit import audit

        result = audit(RESULTS, PRESET, DATA, DEVICE, PARAMS, _split("datasets"), progress=True)
        result.verdicts().to_csv(output[0], index=False)
