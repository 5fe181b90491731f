"""Plot learning curves from the progress.csv logs that hw.train writes.

    python -m hw.plot runs/pg_CartPole-v1 runs/trpo_CartPole-v1 --out cartpole.png
    python -m hw.plot runs/pg_CartPole-v1/seed0 --y kl --out kl.png
    python -m hw.plot runs/*_InvertedPendulum-v5 --x time --out pendulum.png

Each argument is a curve: an experiment folder runs/<exp-name> (its seed*/ runs are
averaged: the line is the mean over seeds, the band spans the lowest and highest seed),
or a single run folder holding progress.csv. Seeds are put on a common x grid by linear
interpolation, up to where the shortest seed stops. The figure is saved as a PNG.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np


def read_progress(path: Path) -> dict[str, np.ndarray]:
    """The columns of a progress.csv as float arrays (empty cells become nan)."""
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))
    if not rows:
        return {}

    def number(text):
        try:
            return float(text)
        except (TypeError, ValueError):
            return float("nan")

    return {key: np.array([number(row[key]) for row in rows]) for key in rows[0]}


def find_runs(folder: Path) -> list[Path]:
    """The progress.csv files of a run folder, or of the run folders inside an experiment folder."""
    if (folder / "progress.csv").is_file():
        return [folder / "progress.csv"]
    return sorted(p for p in folder.glob("*/progress.csv") if p.is_file())


def aggregate(runs: list[dict[str, np.ndarray]], x_key: str, y_key: str, points: int = 200):
    """(x grid, mean, low, high) over runs, interpolated onto a common grid."""
    curves = []
    for run in runs:
        x, y = run[x_key], run[y_key]
        keep = np.isfinite(x) & np.isfinite(y)
        if keep.sum() >= 1:
            curves.append((x[keep], y[keep]))
    if not curves:
        return None
    if len(curves) == 1:
        x, y = curves[0]
        return x, y, y, y
    start = max(c[0][0] for c in curves)
    stop = min(c[0][-1] for c in curves)
    if stop <= start:  # the seeds do not overlap: show the first one only
        x, y = curves[0]
        return x, y, y, y
    grid = np.linspace(start, stop, points)
    ys = np.stack([np.interp(grid, x, y) for x, y in curves])
    return grid, ys.mean(axis=0), ys.min(axis=0), ys.max(axis=0)


Y_LABELS = {"return_mean": "mean return (last 20 episodes)", "kl": "mean KL(old || new) per update",
            "exact_return": "exact J(k, sigma)", "batch_return_mean": "mean return (episodes of the batch)"}
X_LABELS = {"env_steps": "environment steps", "time": "wall-clock seconds", "iteration": "iteration"}


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(prog="python -m hw.plot", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("folders", nargs="+", type=Path, help="experiment folders (runs/<exp-name>) or run folders")
    parser.add_argument("--out", type=Path, default=Path("learning_curve.png"), help="PNG file to write")
    parser.add_argument("--x", default="env_steps", choices=tuple(X_LABELS), help="x axis (default env_steps)")
    parser.add_argument("--y", default="return_mean",
                        help="column to plot (default return_mean: mean return of the last 20 episodes; "
                             "others: kl, entropy, exact_return, k, sigma, ...)")
    parser.add_argument("--title", default=None)
    parser.add_argument("--hline", type=float, action="append", default=[],
                        help="draw a horizontal line (e.g. a return threshold); repeatable")
    args = parser.parse_args(argv)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    plotted = 0
    for folder in args.folders:
        files = find_runs(folder)
        if not files:
            parser.error(f"{folder}: no progress.csv in it or in its sub-folders (is it a runs/<exp-name> folder?)")
        runs = [read_progress(f) for f in files]
        runs = [r for r in runs if r]
        missing = [str(f) for f, r in zip(files, runs) if args.y not in r or args.x not in r]
        if missing or not runs:
            columns = ", ".join(sorted(runs[0])) if runs else "none"
            parser.error(f"{folder}: column {args.y!r} or {args.x!r} missing in {missing or files}; columns: {columns}")
        curve = aggregate(runs, args.x, args.y)
        if curve is None:
            print(f"hw.plot: {folder}: no finite {args.y} values yet, skipped", file=sys.stderr)
            continue
        x, mean, low, high = curve
        single_run = (folder / "progress.csv").is_file()
        label = f"{folder.parent.name}/{folder.name}" if single_run else folder.name
        label += f" ({len(runs)} seeds)" if len(runs) > 1 else ""
        line, = ax.plot(x, mean, label=label)
        if len(runs) > 1:
            ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
        plotted += 1
    for value in args.hline:
        ax.axhline(value, color="gray", linestyle="--", linewidth=1)
    if not plotted:
        parser.error("nothing to plot")
    ax.set_xlabel(X_LABELS.get(args.x, args.x))
    ax.set_ylabel(Y_LABELS.get(args.y, args.y))
    if args.title:
        ax.set_title(args.title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120)
    plt.close(fig)
    print(f"wrote {args.out}")
    return args.out


if __name__ == "__main__":
    main()
