"""Draw the lecture's picture (Lecture 9 part 4): vanilla vs natural gradient on the 1-D example.

    python -m hw.plot_natural_gradient --out natural_gradient.png            # with your steps

Everything comes from the exact expected return of hw.lq_env (no sampling): the arrows are
the directions of the exact grad J and of the natural gradient F^-1 grad J; the background
is J itself.

Coordinates. The picture, and the steps drawn in it, use the lecture's coordinates
theta = (k, sigma), where the exact Fisher of a ~ N(k s, sigma^2) under the policy's own
state distribution is

    F(k, sigma) = diag(E[s^2] / sigma^2, 2 / sigma^2)          (hw.lq_env.policy_fisher)

LinearGaussianPolicy, the tests and hw.train use its flat parameters theta = (k, log sigma)
instead, where F = diag(E[s^2] / sigma^2, 2) (docs/one_d_example.md puts the two side by
side). Either way F^-1 rescales the k-component by sigma^2 / E[s^2]. The two paths start at the same point and
take the same number of steps of `vanilla_step` (||d||^2 = eps) and `natural_gradient_step`
(1/2 d^T F d = eps) from the chosen implementation of hw/natural_gradient.py.
"""
from __future__ import annotations

import argparse
import importlib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from hw import lq_env  # noqa: E402

K_RANGE, SIGMA_RANGE = (-2.0, 0.25), (0.02, 1.0)
START = (-1.8, 0.9)                     # (k, sigma) where both paths begin
STEPS = 40
VANILLA_EPSILON = 0.04**2               # ||d||^2 <= eps: steps of length 0.04
NATURAL_EPSILON = 0.02                  # 1/2 d^T F d <= eps: a KL of about 0.02 per step


def exact_gradient(theta) -> np.ndarray:
    """grad J at theta = (k, sigma): [2]."""
    return np.array([float(part) for part in lq_env.expected_return_gradient(theta[0], theta[1])])


def exact_fisher(theta) -> np.ndarray:
    """F(k, sigma): [2, 2], equation (2) of hw.lq_env."""
    return np.diag([float(part) for part in lq_env.policy_fisher(theta[0], theta[1])])


def path(step, start=START, steps=STEPS) -> np.ndarray:
    """The points theta_0 = start, theta_{i+1} = step(theta_i), stopping if sigma leaves the plot: [m, 2]."""
    points = [np.array(start, dtype=np.float64)]
    for _ in range(steps):
        theta = np.asarray(step(points[-1]), dtype=np.float64)
        if not SIGMA_RANGE[0] <= theta[1]:
            break
        points.append(theta)
    return np.stack(points)


def draw(ng, out: Path) -> dict[str, np.ndarray]:
    """Draw the picture into `out` (PNG); returns the two paths, {name: points [m, 2]}."""
    k, sigma = np.meshgrid(np.linspace(*K_RANGE, 19), np.linspace(0.06, 0.98, 13))
    g_k, g_sigma = lq_env.expected_return_gradient(k, sigma)
    f_kk, f_ss = lq_env.policy_fisher(k, sigma)
    fields = {"vanilla gradient  grad J": (g_k, g_sigma),
              "natural gradient  F$^{-1}$ grad J": (g_k / f_kk, g_sigma / f_ss)}
    paths = {
        "vanilla gradient  grad J": path(lambda t: ng.vanilla_step(t, exact_gradient(t), VANILLA_EPSILON)),
        "natural gradient  F$^{-1}$ grad J": path(
            lambda t: ng.natural_gradient_step(t, exact_gradient(t), exact_fisher(t), NATURAL_EPSILON)),
    }
    k_fine, sigma_fine = np.meshgrid(np.linspace(*K_RANGE, 200), np.linspace(*SIGMA_RANGE, 200))
    J = lq_env.expected_return(k_fine, sigma_fine)
    k_star = lq_env.optimal_gain()

    figure, axes = plt.subplots(1, 2, figsize=(12, 6.0), sharey=True, constrained_layout=True)
    for axis, (title, (u, v)) in zip(axes, fields.items()):
        filled = axis.contourf(k_fine, sigma_fine, J, levels=np.linspace(-30, J.max(), 25), cmap="viridis",
                               extend="min")
        norm = np.hypot(u, v)
        axis.quiver(k, sigma, u / norm, v / norm, color="white", scale=30, width=0.004, alpha=0.9)
        points = paths[title]
        axis.plot(points[:, 0], points[:, 1], "o-", color="tab:red", markersize=3, linewidth=1.5,
                  label=f"{len(points) - 1} steps from the same start, to k = {points[-1, 0]:.2f}, "
                        f"sigma = {points[-1, 1]:.2f}")
        axis.plot(*START, "s", color="tab:red", markersize=8)
        axis.plot(k_star, 0.0, "*", color="gold", markersize=18, markeredgecolor="black", clip_on=False,
                  label=f"optimum k* = {k_star:.3f}, sigma = 0")
        axis.set_title(title)
        axis.set_xlabel("k  (a ~ N(k s, sigma$^2$))")
        axis.set_xlim(*K_RANGE)
        axis.set_ylim(0.0, SIGMA_RANGE[1])
        axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), fontsize=9, frameon=False)
    axes[0].set_ylabel("sigma")
    figure.colorbar(filled, ax=axes, label=f"exact J(k, sigma), T = {lq_env.HORIZON}, reward -s$^2$ - a$^2$, s' = s + a")
    figure.suptitle("Lecture 9 part 4: the vanilla gradient chases sigma -> 0, the natural gradient heads for k*")
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return {title.split()[0]: points for title, points in paths.items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("natural_gradient.png"))
    parser.add_argument("--implementation", default="hw",
                        help="the package whose natural_gradient.py takes the steps (default hw: yours)")
    args = parser.parse_args(argv)
    paths = draw(importlib.import_module(f"{args.implementation}.natural_gradient"), args.out)
    for name, points in paths.items():
        print(f"{name}: {len(points) - 1} steps, from k = {points[0, 0]:.3f}, sigma = {points[0, 1]:.3f} "
              f"to k = {points[-1, 0]:.3f}, sigma = {points[-1, 1]:.3f}")
    print(f"optimum: k* = {lq_env.optimal_gain():.3f}, sigma = 0")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
