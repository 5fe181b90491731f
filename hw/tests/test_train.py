"""Public tests for the training command (hw/train.py) and its sampler (hw/sampling.py).

The sampler tests check provided code and pass before you write anything. The short
training run calls your estimate_q_values and policy_gradient (the `pg` fixture of
conftest.py), so it passes once Part 1 is done:

    pytest hw/tests/test_train.py
"""
import json

import numpy as np
import pytest

from hw.policies import CategoricalPolicy, LinearGaussianPolicy
from hw.sampling import Sampler, make_vector_env, split_paths


def test_split_paths_by_hand():
    # 4 steps of 2 environments. Env 0 terminates at t=1; env 1 is truncated at t=2.
    terminated = np.array([[0, 0], [1, 0], [0, 0], [0, 0]], bool)
    truncated = np.array([[0, 0], [0, 0], [0, 1], [0, 0]], bool)
    lengths, ended = split_paths(terminated, truncated)
    # Rows are env 0's steps t=0..3, then env 1's: paths [0,1] [2,3] | [0,1,2] [3].
    assert lengths.tolist() == [2, 2, 3, 1]
    assert ended.tolist() == [True, False, False, False]  # only the first really terminated


def _cartpole_batch(seed, num_envs=4, steps=60):
    envs = make_vector_env("CartPole-v1", num_envs, seed=seed)
    policy = CategoricalPolicy(4, 2, (16,), seed=seed)
    sampler = Sampler(envs, policy, seed=seed)
    batch = sampler.sample(steps)
    sampler.close()
    return batch


def test_sampler_batch_shapes_and_paths():
    num_envs, steps = 4, 60
    batch = _cartpole_batch(seed=0, num_envs=num_envs, steps=steps)
    n = num_envs * steps
    assert batch.observations.shape == (n, 4) and batch.observations.dtype == np.float32
    assert batch.actions.shape == (n,) and set(np.unique(batch.actions)) <= {0, 1}
    assert batch.rewards.shape == (n,) and np.all(batch.rewards == 1.0)
    assert batch.path_lengths.sum() == n
    assert len(batch.terminated) == len(batch.path_lengths) == len(batch.bootstrap_observations)
    rewards = batch.rewards_per_path
    assert [len(r) for r in rewards] == batch.path_lengths.tolist()
    # Every environment's steps end a path at the batch's end: paths never span two environments.
    ends = set(np.cumsum(batch.path_lengths).tolist())
    assert {steps * (e + 1) for e in range(num_envs)} <= ends
    # A random CartPole policy falls within ~20 steps: the first batch holds whole episodes,
    # and gymnasium's episode statistics agree with the paths that terminated.
    assert batch.terminated.sum() > num_envs
    assert sorted(batch.episode_lengths) == sorted(batch.path_lengths[batch.terminated].tolist())
    assert sorted(batch.episode_returns) == sorted(batch.path_lengths[batch.terminated].astype(float).tolist())


def test_sampler_is_repeatable_given_a_seed():
    first, second, other = _cartpole_batch(seed=3), _cartpole_batch(seed=3), _cartpole_batch(seed=4)
    np.testing.assert_array_equal(first.observations, second.observations)
    np.testing.assert_array_equal(first.actions, second.actions)
    assert not np.array_equal(first.observations, other.observations)


def test_truncated_paths_keep_their_final_observation():
    # The lecture's 1-D example never terminates: the 10-step time limit truncates it.
    # s_{t+1} = s_t + a_t, so the observation after a path's last step is known exactly:
    # it must be the episode's true final state, not the next episode's reset state.
    envs = make_vector_env("LinearQuadratic1D-v0", 3, seed=0)
    policy = LinearGaussianPolicy(k=-0.5, sigma=0.3)
    sampler = Sampler(envs, policy, seed=0)
    batch = sampler.sample(25)
    assert batch.path_lengths.tolist() == [10, 10, 5] * 3
    assert not batch.terminated.any()
    last = batch.path_ends
    np.testing.assert_allclose(batch.bootstrap_observations[:, 0],
                               batch.observations[last, 0] + batch.actions[last, 0], rtol=1e-5, atol=1e-5)
    # Within a path, each observation is the previous one plus the previous action.
    inside = np.setdiff1d(np.arange(len(batch)), last)
    np.testing.assert_allclose(batch.observations[inside + 1, 0],
                               batch.observations[inside, 0] + batch.actions[inside, 0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(batch.rewards, -batch.observations[:, 0] ** 2 - batch.actions[:, 0] ** 2, rtol=1e-4)
    sampler.close()


@pytest.mark.parametrize("flags, message", [
    (["--env", "NoSuchEnv-v0"], "unknown environment"),
    (["--env", "FrozenLake-v1"], "observation space"),
    (["--gamma", "1.5"], "--gamma"),
    (["--algo", "sac"], "invalid choice"),
    (["--batch-size", "0"], "positive integer"),
])
def test_bad_options_stop_with_a_clear_message(flags, message, capsys, tmp_path):
    from hw import train

    with pytest.raises(SystemExit) as stop:
        train.main([*flags, "--runs-dir", str(tmp_path), "--no-progress", "--total-steps", "100"])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


def test_short_training_run_writes_its_logs(pg, tmp_path):
    """A 1,200-step run with your Part 1 functions writes progress.csv, config.json and TensorBoard events."""
    from hw import train

    implementation = pg.__name__.rpartition(".")[0]  # the package under test (hw, normally)
    argv = ["--algo", "pg", "--env", "CartPole-v1", "--impl", implementation, "--total-steps", "1200",
            "--batch-size", "400", "--num-envs", "4", "--runs-dir", str(tmp_path), "--exp-name", "smoke",
            "--seed", "1", "--no-progress"]
    stopped = None
    try:
        summary = train.main(argv)
    except SystemExit as stop:  # e.g. a function still raising NotImplementedError
        stopped = str(stop.code)
    if stopped is not None:
        pytest.fail(stopped, pytrace=False)
    run = tmp_path / "smoke" / "seed1"
    assert summary["env_steps"] == 1200 and summary["iterations"] == 3
    lines = (run / "progress.csv").read_text().splitlines()
    header = lines[0].split(",")
    for column in ("iteration", "env_steps", "return_mean", "q_value_mean", "kl", "entropy", "value_mse"):
        assert column in header
    assert len(lines) == 1 + 3
    steps = [int(line.split(",")[header.index("env_steps")]) for line in lines[1:]]
    assert steps == [400, 800, 1200]
    q_means = [float(line.split(",")[header.index("q_value_mean")]) for line in lines[1:]]
    assert all(np.isfinite(q_means)) and all(q > 1.0 for q in q_means), (
        f"mean Q-value of each batch {q_means}: CartPole pays +1 per step, so every reward-to-go is at least about 1 "
        "(check estimate_q_values)")
    kl = [float(line.split(",")[header.index("kl")]) for line in lines[1:]]
    assert all(np.isfinite(kl)) and all(k > 0 for k in kl), (
        f"KL between the policies before and after each update {kl}: each Adam step along your policy_gradient "
        "should move the policy a little (a zero KL: a zero gradient)")
    config = json.loads((run / "config.json").read_text())
    assert config["algo"] == "pg" and config["batch_size"] == 400
    assert list(run.glob("events.out.tfevents*")), "no TensorBoard event file"
