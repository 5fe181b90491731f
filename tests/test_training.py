"""The training command with the reference solutions (--impl solutions): every algorithm
learns on CartPole-v1, logs what it should, and the runs are repeatable. The slow test
(`pytest --runslow`) trains the reference to CartPole's 475 threshold."""
from __future__ import annotations

import csv
import sys

import hw  # noqa: F401
import numpy as np
import pytest

from hw import plot, train


def run(tmp_path, *flags, name="run", seed=0):
    summary = train.main(["--impl", "solutions", "--runs-dir", str(tmp_path), "--exp-name", name,
                          "--seed", str(seed), "--no-progress", *flags])
    with open(tmp_path / name / f"seed{seed}" / "progress.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    return summary, rows


def column(rows, key):
    return np.array([float(row[key]) for row in rows])


@pytest.mark.parametrize("algo, steps", [("pg", 24_000), ("npg", 16_000), ("trpo", 16_000)])
def test_each_algorithm_improves_cartpole(tmp_path, algo, steps):
    summary, rows = run(tmp_path, "--algo", algo, "--env", "CartPole-v1", "--total-steps", str(steps), name=algo)
    returns = column(rows, "batch_return_mean")
    first, last = returns[0], summary["return_mean"]
    # A random CartPole policy lasts ~20 steps; the reference gets past 100 within these budgets.
    assert first < 40 and last > 100, f"{algo}: return {first:.1f} -> {last:.1f} after {steps} steps"
    kl = column(rows, "kl")
    assert np.all(np.isfinite(kl)) and np.all(kl >= 0)
    if algo != "pg":  # a natural-gradient step's KL is about epsilon (0.02 for CartPole)
        assert np.median(kl) < 0.05, f"{algo}: median KL {np.median(kl)}"
    assert list((tmp_path / algo / "seed0").glob("events.out.tfevents*"))
    assert int(rows[-1]["env_steps"]) == summary["env_steps"] >= steps


def test_runs_are_repeatable_and_seeds_differ(tmp_path):
    flags = ("--algo", "pg", "--total-steps", "4000")
    _, first = run(tmp_path, *flags, name="a")
    _, second = run(tmp_path, *flags, name="b")
    _, other = run(tmp_path, *flags, name="c", seed=1)
    for key in ("return_mean", "kl", "value_mse", "grad_norm"):
        np.testing.assert_array_equal(column(first, key), column(second, key), err_msg=key)
    assert not np.array_equal(column(first, "grad_norm"), column(other, "grad_norm"))


def test_gaussian_policy_and_lq_example(tmp_path):
    # InvertedPendulum (mujoco, Box actions) runs; the 1-D example logs its exact J, and
    # vanilla PG and NPG from the same start both improve it.
    summary, rows = run(tmp_path, "--algo", "pg", "--env", "InvertedPendulum-v5", "--total-steps", "4000", name="ip")
    assert summary["env_steps"] == 4000 and np.isfinite(column(rows, "entropy")).all()
    from hw.lq_env import expected_return

    start = expected_return(0.0, 1.0)  # the presets start both from k = 0, sigma = 1: J = -65
    final = {}
    for algo in ("pg", "npg"):
        _, rows = run(tmp_path, "--algo", algo, "--env", "LinearQuadratic1D-v0", "--total-steps", "20000", name=algo)
        final[algo] = column(rows, "exact_return")[-1]
        assert final[algo] > start + 30, f"{algo}: exact J {start:.2f} -> {final[algo]:.2f}"
    assert final["npg"] > final["pg"], f"natural gradient {final['npg']:.2f} vs vanilla {final['pg']:.2f}"


def test_stub_functions_stop_training_with_the_function_to_write(tmp_path, monkeypatch):
    import types

    stub = types.ModuleType("stubimpl.policy_gradient")

    def estimate_q_values(*args):
        raise NotImplementedError("estimate_q_values: TODO, the Q-values (hw/policy_gradient.py)")

    stub.estimate_q_values = estimate_q_values
    monkeypatch.setitem(sys.modules, "stubimpl", types.ModuleType("stubimpl"))
    monkeypatch.setitem(sys.modules, "stubimpl.policy_gradient", stub)
    with pytest.raises(SystemExit, match="estimate_q_values: TODO") as stop:
        train.main(["--impl", "stubimpl", "--runs-dir", str(tmp_path), "--total-steps", "100", "--no-progress"])
    assert "Fill it in" in str(stop.value.code)


def test_missing_implementation_package_is_explained(tmp_path):
    with pytest.raises(SystemExit, match="--impl no_such_package: cannot import no_such_package.policy_gradient"):
        train.main(["--impl", "no_such_package", "--runs-dir", str(tmp_path), "--no-progress"])


@pytest.mark.parametrize("flags, name", [
    ([], "pg_CartPole-v1"),
    (["--no-baseline", "--no-reward-to-go"], "pg_CartPole-v1_no-rtg_no-baseline"),
    (["--batch-size", "500"], "pg_CartPole-v1_batch-size-500"),
    (["--learning-rate", "0.1"], "pg_CartPole-v1_learning-rate-0.1"),
    (["--epsilon", "0.05"], "pg_CartPole-v1"),  # pg does not use epsilon (a note says so)
    (["--algo", "trpo", "--epsilon", "0.05"], "trpo_CartPole-v1_epsilon-0.05"),
    (["--algo", "trpo", "--epsilon", "0.02"], "trpo_CartPole-v1"),  # the preset's value
    (["--env", "LinearQuadratic1D-v0", "--learning-rate", "0.03"], "pg_LinearQuadratic1D-v0_learning-rate-0.03"),
    (["--env", "LinearQuadratic1D-v0", "--baseline"], "pg_LinearQuadratic1D-v0_baseline"),
    (["--hidden-sizes", "32", "32", "--target-return", "475"], "pg_CartPole-v1_target-return-475_hidden-sizes-32x32"),
    (["--seed", "3", "--threads", "2", "--no-progress"], "pg_CartPole-v1"),  # not settings of the algorithm
])
def test_default_experiment_names_record_every_setting_that_differs_from_the_preset(flags, name):
    parser = train.make_parser()
    assert train.resolve_config(parser.parse_args(flags), parser)["exp_name"] == name


def test_config_json_lists_the_settings_the_run_uses(tmp_path):
    import json

    run(tmp_path, "--algo", "pg", "--env", "LinearQuadratic1D-v0", "--total-steps", "400", name="lq")
    config = json.loads((tmp_path / "lq" / "seed0" / "config.json").read_text())
    assert {"learning_rate", "optimizer", "init_k", "init_sigma", "gamma", "batch_size"} <= set(config)
    assert not {"epsilon", "damping", "cg_iterations", "backtrack_ratio", "hidden_sizes", "log_std",
                "value_learning_rate", "progress", "runs_dir", "threads"} & set(config), sorted(config)


def test_the_progress_bar_ends_at_100_percent_when_the_target_is_reached(tmp_path, capsys):
    summary = train.main(["--impl", "solutions", "--runs-dir", str(tmp_path), "--exp-name", "target",
                          "--target-return", "15", "--total-steps", "100000"])
    assert summary["solved"] and summary["env_steps"] < 100_000
    err = capsys.readouterr().err
    last_bar = err.replace("\r", "\n").strip().splitlines()[-1]
    assert "100%" in last_bar and "target 15 reached" in last_bar, last_bar


def test_the_1d_summary_line_shows_the_exact_return(tmp_path, capsys):
    _, rows = run(tmp_path, "--algo", "npg", "--env", "LinearQuadratic1D-v0", "--total-steps", "4000", name="lq")
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert f"exact J(k, sigma) = {float(rows[-1]['exact_return']):.3f}" in line, line


def test_plot_overlays_runs_and_seeds(tmp_path):
    for seed in (0, 1):
        run(tmp_path, "--algo", "pg", "--total-steps", "3000", name="exp", seed=seed)
    run(tmp_path, "--algo", "pg", "--total-steps", "2000", "--no-baseline", name="other")
    out = plot.main([str(tmp_path / "exp"), str(tmp_path / "other" / "seed0"), "--out", str(tmp_path / "c.png")])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(SystemExit):
        plot.main([str(tmp_path / "nothing-here"), "--out", str(tmp_path / "d.png")])


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["pg", "trpo"])
def test_reference_solves_cartpole(tmp_path, algo):
    summary, _ = run(tmp_path, "--algo", algo, "--env", "CartPole-v1", "--target-return", "475",
                     "--total-steps", "300000", name=algo)
    assert summary["solved"], f"{algo}: mean return {summary['return_mean']:.1f} after {summary['env_steps']} steps"
