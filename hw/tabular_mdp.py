"""A small tabular MDP whose expected return J(theta) is known exactly (provided, no TODOs).

The MDP has n_states states, n_actions actions and a finite horizon H: s_0 ~ initial,
a_t ~ pi(. | s_t), reward R[s_t, a_t], s_{t+1} ~ P[s_t, a_t, .], and every trajectory has
exactly H steps. It is small enough to enumerate all (n_states * n_actions)^H
trajectories, so that in float64 NumPy

    J(theta) = sum_tau P_theta(tau) sum_{t=0}^{H-1} gamma^t r_t

is exact, and so is its gradient, the expectation of equation (1) of policy_gradient.py:

    grad J = sum_tau P_theta(tau) sum_t grad log pi(a_t | s_t) gamma^t Q^rtg_t      (reward-to-go)
           = sum_tau P_theta(tau) sum_t grad log pi(a_t | s_t) R(tau)               (whole return)

with Q^rtg_t = sum_{t'>=t} gamma^(t'-t) r_t' and R(tau) = sum_t gamma^t r_t. (The gamma^t
factor is usually dropped in practice; it is needed here for an exact equality when
gamma < 1.) `TabularMDP.trajectories` lists every trajectory as one batch of B steps;
weighting each step's Q-value by `batch.weights(use_reward_to_go)` = B P(tau) (gamma^t)
turns the pseudo-loss's mean over the batch into exactly that sum, so

    policy_gradient(policy, batch.observations, batch.actions,
                    batch.weights(rtg) * estimate_q_values(batch.rewards_per_path, mdp.gamma, rtg))

equals the finite differences of `mdp.expected_return(policy)` up to round-off.

Policies: a table of logits [n_states, n_actions], or any discrete policy of
hw/policies.py on one-hot observations, e.g. CategoricalPolicy(n_states, n_actions,
hidden_sizes=()) (linear-softmax, i.e. tabular softmax plus a shared bias) in float64.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

MAX_TRAJECTORIES = 200_000


@dataclass(frozen=True)
class TrajectoryBatch:
    """Every trajectory of a TabularMDP, flattened step by step, trajectory after trajectory.

    With n trajectories of H steps there are B = n * H rows; row k = i * H + t is step t of
    trajectory i.

    Attributes:
        observations: [B, n_states] float64, the one-hot encoding of s_t.
        actions: [B] int64, a_t.
        rewards_per_path: list of n arrays [H] float64, the rewards of each trajectory.
        probabilities: [B] float64, P_theta(tau) of the trajectory the row belongs to
            (each trajectory's probability repeated H times; they sum to H over the rows).
        time_steps: [B] int64, t.
        gamma: the MDP's discount factor.
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards_per_path: list
    probabilities: np.ndarray
    time_steps: np.ndarray
    gamma: float

    def weights(self, use_reward_to_go: bool = True) -> np.ndarray:
        """[B] float64: B P(tau) gamma^t (reward-to-go) or B P(tau) (whole return).

        Multiplied into the Q-value estimates of `estimate_q_values(self.rewards_per_path,
        self.gamma, use_reward_to_go)`, they make the pseudo-loss gradient exactly grad J.
        """
        batch_size = len(self.actions)
        discounts = self.gamma ** self.time_steps if use_reward_to_go else np.ones(batch_size)
        return batch_size * self.probabilities * discounts


class TabularMDP:
    """A finite-horizon MDP with enumerable trajectories.

    Args:
        initial: [S] the distribution of s_0.
        transitions: [S, A, S] P[s, a, s'] = P(s_{t+1} = s' | s_t = s, a_t = a).
        rewards: [S, A] R[s, a], the reward for taking a in s.
        horizon: H, the number of steps of every trajectory.
        gamma: the discount factor in J (1 for the plain finite-horizon sum).
    """

    def __init__(self, initial, transitions, rewards, horizon: int, gamma: float = 1.0):
        self.initial = np.asarray(initial, dtype=np.float64)
        self.transitions = np.asarray(transitions, dtype=np.float64)
        self.rewards = np.asarray(rewards, dtype=np.float64)
        self.horizon = int(horizon)
        self.gamma = float(gamma)
        n_states, n_actions = self.rewards.shape
        if self.initial.shape != (n_states,) or self.transitions.shape != (n_states, n_actions, n_states):
            raise ValueError(f"TabularMDP: initial {self.initial.shape} and transitions {self.transitions.shape} "
                             f"do not match rewards {self.rewards.shape} = [n_states, n_actions]")
        if not (np.allclose(self.initial.sum(), 1) and np.allclose(self.transitions.sum(-1), 1)):
            raise ValueError("TabularMDP: initial and transitions[s, a] must be probability distributions")
        if self.horizon < 1:
            raise ValueError(f"TabularMDP: the horizon must be at least 1, got {self.horizon}")
        n_trajectories = (n_states * n_actions) ** self.horizon
        if n_trajectories > MAX_TRAJECTORIES:
            raise ValueError(f"TabularMDP: horizon {self.horizon} gives {n_trajectories} trajectories to enumerate "
                             f"(at most {MAX_TRAJECTORIES})")
        # Every trajectory as its states and actions, [n, H] each.
        states_actions = np.array(list(itertools.product(range(n_states), range(n_actions), repeat=self.horizon)))
        self._states = states_actions[:, 0::2]
        self._actions = states_actions[:, 1::2]
        # What does not depend on the policy: P(s_0) prod_t P(s_{t+1} | s_t, a_t), and the rewards.
        s, a = self._states, self._actions
        self._dynamics = self.initial[s[:, 0]] * np.prod(self.transitions[s[:, :-1], a[:, :-1], s[:, 1:]], axis=1)
        self._rewards = self.rewards[s, a]  # [n, H]

    @classmethod
    def random(cls, n_states: int = 3, n_actions: int = 2, horizon: int = 3, gamma: float = 1.0,
               seed: int = 0) -> "TabularMDP":
        """An MDP with random dynamics (Dirichlet(1) rows) and standard-normal rewards."""
        rng = np.random.default_rng(seed)
        return cls(initial=rng.dirichlet(np.ones(n_states)),
                   transitions=rng.dirichlet(np.ones(n_states), size=(n_states, n_actions)),
                   rewards=rng.normal(size=(n_states, n_actions)),
                   horizon=horizon, gamma=gamma)

    @property
    def n_states(self) -> int:
        return self.rewards.shape[0]

    @property
    def n_actions(self) -> int:
        return self.rewards.shape[1]

    def action_probabilities(self, policy) -> np.ndarray:
        """[S, A] float64 pi(a | s), from a logits table [S, A] or a discrete policy on one-hot states."""
        if hasattr(policy, "predictions"):
            logits = np.asarray(policy.predictions(np.eye(self.n_states)), dtype=np.float64)
        else:
            logits = np.asarray(policy, dtype=np.float64)
        if logits.shape != (self.n_states, self.n_actions):
            raise ValueError(f"TabularMDP: logits of shape {logits.shape}, expected {(self.n_states, self.n_actions)}")
        logits = logits - logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits)
        return probabilities / probabilities.sum(axis=1, keepdims=True)

    def trajectory_probabilities(self, policy) -> np.ndarray:
        """[n] float64, P_theta(tau) of every trajectory, in the order of `trajectories`."""
        pi = self.action_probabilities(policy)
        return self._dynamics * np.prod(pi[self._states, self._actions], axis=1)

    def expected_return(self, policy) -> float:
        """J = sum_tau P(tau) sum_t gamma^t r_t, exactly (float64)."""
        discounts = self.gamma ** np.arange(self.horizon)
        return float(np.sum(self.trajectory_probabilities(policy) * (self._rewards @ discounts)))

    def trajectories(self, policy) -> TrajectoryBatch:
        """Every trajectory under `policy` as one batch of B = n * H steps (see TrajectoryBatch)."""
        n, horizon = self._states.shape
        return TrajectoryBatch(
            observations=np.eye(self.n_states)[self._states.reshape(-1)],
            actions=self._actions.reshape(-1).astype(np.int64),
            rewards_per_path=list(self._rewards),
            probabilities=np.repeat(self.trajectory_probabilities(policy), horizon),
            time_steps=np.tile(np.arange(horizon), n),
            gamma=self.gamma,
        )
