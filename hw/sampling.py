"""Sampling trajectories from vectorized gymnasium environments (provided, no TODOs).

One `Sampler.sample(steps_per_env)` call runs all `num_envs` environments side by side
for `steps_per_env` steps and returns a `Batch` of `num_envs * steps_per_env` transitions.
Per step there is exactly one call of the policy (a tf.function) for all environments,
and no Python loop over samples.

How the data is laid out
------------------------
The environments keep running from one batch to the next (they are not reset at every
iteration), so a batch holds, for each environment, the end of the episode that was
running when the batch started, whole episodes, and the start of the episode that is
still running when the batch ends. Each of those pieces is a *path*. The batch lists the
transitions environment by environment and, inside an environment, in time order, so
the paths are contiguous and `rewards_per_path` is in the same order as the rows of
`observations` / `actions`: `estimate_q_values(batch.rewards_per_path, ...)` lines up
with them row for row.

A path ends in one of three ways:

- terminated: the MDP reached a terminal state (the pole fell). Nothing follows; the
  value of what comes after is 0.
- truncated: the environment's time limit (500 steps for CartPole-v1, 1000 for
  InvertedPendulum-v5) stopped the episode, not the task.
- cut: the batch ended while the episode was still running.

For the last two the return after the path's last step is not zero, only unobserved.
`Batch.bootstrap_observations` holds the observation that followed each path's last
step (gymnasium's `final_obs` for a truncated path) and `Batch.terminated` says which
paths really ended; the training loop adds gamma * V(s_next) to the last reward of every
path that did not terminate when it has a learned value baseline (hw/train.py), and
leaves the rewards as they are otherwise.

Gymnasium 1.x autoreset
-----------------------
Vector environments reset a finished sub-environment by themselves. gymnasium 1.x does
it on the *next* step by default (AutoresetMode.NEXT_STEP: that step ignores the action
and returns the reset observation with reward 0, and must not be used as a transition).
The sampler asks for AutoresetMode.SAME_STEP instead: the step that ends an episode
returns the first observation of the next one and puts the true last observation in
`info["final_obs"]`, so every step is a real transition.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

import gymnasium as gym
from gymnasium.vector import AutoresetMode

#: How many finished episodes the running average return is taken over.
EPISODE_WINDOW = 20


class UnsupportedEnvironment(ValueError):
    """An environment the homework cannot train on (unknown id, unsupported spaces)."""


def make_vector_env(env_id: str, num_envs: int, *, seed: int | None = None,
                    env_kwargs: dict | None = None) -> gym.vector.VectorEnv:
    """`num_envs` copies of `env_id` stepped in this process, SAME_STEP autoreset, with
    gymnasium's episode statistics (returns and lengths of finished episodes)."""
    if num_envs < 1:
        raise ValueError(f"num_envs must be at least 1, got {num_envs}")
    _register_homework_envs()
    try:
        gym.spec(env_id)
    except gym.error.Error as error:
        known = ", ".join(KNOWN_ENVS)
        raise UnsupportedEnvironment(f"unknown environment {env_id!r} ({error}); the homework trains on {known}") from None
    try:
        envs = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="sync",
                            vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP}, **(env_kwargs or {}))
    except gym.error.DependencyNotInstalled as error:
        raise UnsupportedEnvironment(f"environment {env_id!r} needs a package that is not installed: {error}") from None
    check_spaces(envs.single_observation_space, envs.single_action_space, env_id)
    envs = gym.wrappers.vector.RecordEpisodeStatistics(envs, buffer_length=EPISODE_WINDOW)
    if seed is not None:
        envs.action_space.seed(seed)
    return envs


KNOWN_ENVS = ("CartPole-v1", "InvertedPendulum-v5", "LinearQuadratic1D-v0")


def _register_homework_envs() -> None:
    """Register the lecture's 1-D linear-quadratic environment if hw/lq_env.py exists."""
    try:
        import hw.lq_env  # noqa: F401  (registers itself with gymnasium)
    except ImportError:
        pass


def check_spaces(observation_space, action_space, env_id: str = "the environment") -> None:
    """Raise a clear error unless the policies in hw/policies.py can serve these spaces."""
    if not (isinstance(observation_space, gym.spaces.Box) and len(observation_space.shape) == 1):
        raise UnsupportedEnvironment(f"{env_id}: observation space {observation_space} is not supported; "
                                "the policies take flat vectors (a 1-D Box)")
    if isinstance(action_space, gym.spaces.Discrete):
        if action_space.start != 0:
            raise UnsupportedEnvironment(f"{env_id}: Discrete action space must start at 0, got {action_space}")
        return
    if isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1:
        return
    raise UnsupportedEnvironment(f"{env_id}: action space {action_space} is not supported; "
                            "CategoricalPolicy serves Discrete(n), GaussianPolicy a 1-D Box")


@dataclass
class Batch:
    """`num_envs * steps_per_env` transitions, grouped in paths (see the module docstring).

    observations  [N, obs_dim]  float32
    actions       [N] int32 (discrete) or [N, act_dim] float32 (the sampled, unclipped action)
    rewards       [N]           float32
    path_lengths  [P]           int, sum = N
    terminated    [P]           bool, True if the path ended in a terminal state
    bootstrap_observations [P, obs_dim]: the observation after each path's last step
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    path_lengths: np.ndarray
    terminated: np.ndarray
    bootstrap_observations: np.ndarray
    episode_returns: list = field(default_factory=list)  # episodes that finished in this batch
    episode_lengths: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rewards)

    @property
    def path_starts(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.path_lengths)[:-1]]).astype(int)

    @property
    def path_ends(self) -> np.ndarray:
        """Index (into the rows) of each path's last step."""
        return np.cumsum(self.path_lengths).astype(int) - 1

    @property
    def rewards_per_path(self) -> list[np.ndarray]:
        return np.split(self.rewards, np.cumsum(self.path_lengths)[:-1])


def split_paths(terminated: np.ndarray, truncated: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Path boundaries of a [T, E] block of steps (T steps of E environments).

    The rows are taken environment by environment (the transpose of the [T, E] block,
    flattened), and a path ends after every step that terminated or truncated, and at the
    end of each environment's T steps. Returns (path_lengths [P], path_terminated [P]).
    """
    terminated = np.asarray(terminated, bool)
    truncated = np.asarray(truncated, bool)
    steps, num_envs = terminated.shape
    ends = (terminated | truncated).T.copy()  # [E, T]
    ends[:, -1] = True  # the batch cuts every environment's last path
    flat_ends = np.flatnonzero(ends.reshape(-1))
    lengths = np.diff(np.concatenate([[-1], flat_ends]))
    return lengths, terminated.T.reshape(-1)[flat_ends]


class Sampler:
    """Runs a policy in a vector environment; one batched policy call per step.

    The environments are seeded once, at construction, and action noise comes from a
    seeded tf.random.Generator, so that a run is repeatable given `seed`.
    """

    def __init__(self, envs: gym.vector.VectorEnv, policy, *, seed: int = 0):
        self.envs, self.policy = envs, policy
        self.num_envs = envs.num_envs
        self.discrete = isinstance(envs.single_action_space, gym.spaces.Discrete)
        if self.discrete != bool(policy.discrete):
            raise UnsupportedEnvironment(f"a {'discrete' if policy.discrete else 'Gaussian'} policy cannot act in "
                                    f"action space {envs.single_action_space}")
        space = envs.single_action_space
        self._low = None if self.discrete else space.low.astype(np.float32)
        self._high = None if self.discrete else space.high.astype(np.float32)
        self.obs_dim = envs.single_observation_space.shape[0]
        self._rng = tf.random.Generator.from_seed(seed)
        # Traced once; calling the concrete function skips tf.function's argument
        # dispatch, about half of the ~300 us a call of a small network costs.
        self._act = tf.function(self._sample_actions).get_concrete_function(
            tf.TensorSpec([None, self.obs_dim], tf.float32))
        self.observations, _ = envs.reset(seed=seed)
        self.total_steps = 0

    def _sample_actions(self, observations):
        """One stochastic action per row, in one graph call."""
        predictions = self.policy.predictions(observations)
        if self.policy.discrete:
            # The Gumbel-max trick: argmax(logits + Gumbel noise) is distributed as
            # softmax(logits), and costs fewer ops per call than tf.random.categorical.
            uniform = self._rng.uniform(tf.shape(predictions), 1e-20, 1.0, dtype=predictions.dtype)
            return tf.argmax(predictions - tf.math.log(-tf.math.log(uniform)), axis=1, output_type=tf.int32)
        noise = self._rng.normal(tf.shape(predictions), dtype=predictions.dtype)
        return tf.cast(predictions + tf.exp(self.policy.log_std) * noise, tf.float32)

    def act(self, observations: np.ndarray) -> np.ndarray:
        return self._act(tf.convert_to_tensor(observations, tf.float32)).numpy()

    def sample(self, steps_per_env: int) -> Batch:
        """Run every environment for `steps_per_env` steps; see the module docstring."""
        if steps_per_env < 1:
            raise ValueError(f"steps_per_env must be at least 1, got {steps_per_env}")
        T, E = steps_per_env, self.num_envs
        obs = np.empty((T, E, self.obs_dim), np.float32)
        next_obs = np.empty((T, E, self.obs_dim), np.float32)
        actions = None
        rewards = np.empty((T, E), np.float32)
        terminated = np.empty((T, E), bool)
        truncated = np.empty((T, E), bool)
        episode_returns, episode_lengths = [], []
        for t in range(T):
            obs[t] = self.observations
            action = self.act(self.observations)
            if actions is None:
                actions = np.empty((T, *action.shape), action.dtype)
            actions[t] = action
            env_action = action if self.discrete else np.clip(action, self._low, self._high)
            self.observations, rewards[t], terminated[t], truncated[t], info = self.envs.step(env_action)
            next_obs[t] = self.observations
            if "_final_obs" in info:  # SAME_STEP: the true next state of the finished episodes
                for e in np.flatnonzero(info["_final_obs"]):
                    next_obs[t, e] = info["final_obs"][e]
            if "_episode" in info:
                done = info["_episode"]
                episode_returns.extend(info["episode"]["r"][done].tolist())
                episode_lengths.extend(info["episode"]["l"][done].tolist())
        self.total_steps += T * E
        lengths, path_terminated = split_paths(terminated, truncated)

        def env_major(x):  # [T, E, ...] -> [E * T, ...]: each environment's steps in time order
            return np.swapaxes(x, 0, 1).reshape(T * E, *x.shape[2:])

        next_obs = env_major(next_obs)
        return Batch(
            observations=env_major(obs), actions=env_major(actions), rewards=env_major(rewards),
            path_lengths=lengths, terminated=path_terminated,
            bootstrap_observations=next_obs[np.cumsum(lengths) - 1],
            episode_returns=episode_returns, episode_lengths=episode_lengths,
        )

    def recent_return(self) -> float:
        """Mean return of the last EPISODE_WINDOW finished episodes (nan before the first)."""
        queue = self.envs.return_queue
        return float(np.mean(queue)) if len(queue) else float("nan")

    def close(self) -> None:
        self.envs.close()
