"""Expected CPU-hours (or GPU-hours) of a grid, from sgdtail.cost's calibrated model.

    .venv/bin/python scripts/grid_cost.py --grid paper            # on CPUs
    .venv/bin/python scripts/grid_cost.py --grid paper --gpu      # one GPU per run job

Prints, per job kind, the expected total if every run went its full number of steps (runs
that stop early at their accuracy target cost less) and the largest single job.
"""

import argparse
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sgdtail.cost import grid_cost  # noqa: E402
from sgdtail.grid import checkpoint_schedule, expand_grid, resolved_section, run_training  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    repo = Path(__file__).resolve().parents[1]
    parser.add_argument("--config", default=str(repo / "config.yaml"))
    parser.add_argument("--grid", default="paper")
    parser.add_argument("--gpu", action="store_true", help="run jobs on one GPU each")
    args = parser.parse_args()
    with open(args.config) as fh:
        config = yaml.safe_load(fh)
    config["grid"] = args.grid
    points = expand_grid(config["grids"][args.grid]["runs"], where=f"grids.{args.grid}")
    training = run_training(config, points)
    checkpoints = {
        path: len(checkpoint_schedule(t["checkpoints"], t["iterations"]))
        for path, t in training.items()
    }
    rows = [{**p.wildcards(), "path": p.path} for p in points]
    cost = grid_cost(
        rows,
        training,
        checkpoints,
        resolved_section(config, "noise")["splits"],
        resolved_section(config, "sharpness"),
        gpu=args.gpu,
    )
    unit = "GPU-hours" if args.gpu else "CPU-hours"
    print(f"grid {args.grid}: {len(points)} runs, full length, expected {unit}:")
    for kind, hours in cost.items():
        print(f"  {kind:10s} {hours:10,.0f}")
    print(f"  {'total':10s} {sum(cost.values()):10,.0f}")


if __name__ == "__main__":
    main()
