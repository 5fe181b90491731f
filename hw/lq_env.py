"""The lecture's 1-D example (Lecture 9 part 4), as a gymnasium environment with its exact
expected return (provided, no TODOs).

    state s in R, action a in R, policy a ~ N(k s, sigma^2)   (hw.policies.LinearGaussianPolicy)
    start        s_0 ~ N(0, start_std^2)
    dynamics     s_{t+1} = s_t + a_t                          (the action moves the state)
    reward       r_t = -s_t^2 - a_t^2
    horizon      T steps, undiscounted: J(k, sigma) = E[sum_{t=0}^{T-1} r_t]

Exact expected return. Under the policy, s_{t+1} = (1 + k) s_t + sigma eps_t with
eps_t ~ N(0, 1), so the second moments m_t = E[s_t^2] obey

    m_0 = start_std^2,    m_{t+1} = c m_t + sigma^2,    c = (1 + k)^2,

and, since E[a_t^2] = k^2 m_t + sigma^2,

    J(k, sigma) = -sum_{t=0}^{T-1} [(1 + k^2) m_t + sigma^2]                       (1)

a finite sum of T closed-form terms (m_t = c^t m_0 + sigma^2 (1 - c^t) / (1 - c)). Its
gradient follows by differentiating the recursion: dm_{t+1}/dk = 2 (1 + k) m_t + c dm_t/dk,
dm_{t+1}/dsigma = c dm_t/dsigma + 2 sigma.

The optimum. J is strictly decreasing in sigma^2 for every k (noise only adds cost), so
sigma* = 0: the best policy is deterministic. At sigma = 0, J = -m_0 (1 + k^2) sum_t c^t,
and as T -> infinity (for |1 + k| < 1) J -> -m_0 (1 + k^2) / (1 - (1 + k)^2); setting its
derivative to zero gives k^2 - k - 1 = 0, so

    k* = (1 - sqrt(5)) / 2 = -0.6180...     (the infinite-horizon LQR gain, Riccati P = 1.618)

With the default T = 10 the exact finite-horizon optimum (`optimal_gain`) is
k* = -0.6180339, equal to this to 7 decimal places. The lecture's slide puts the optimum at k = -1, which drives the
state to 0 in one step; under these dynamics and rewards that costs 2 m_0 against
1.618 m_0 at k*, because a^2 is penalised as much as s^2.

The Fisher information of the policy, averaged over the states the policy visits (the
average over t of the law of s_t), is diagonal. In the lecture's coordinates (k, sigma)
(hw/plot_natural_gradient.py's picture) and in LinearGaussianPolicy's flat parameters
theta = (k, log sigma) (the tests, hw.train, `theta_gradient`):

    F(k, sigma)     = diag( mean_t m_t / sigma^2,  2 / sigma^2 )                    (2)
    F(k, log sigma) = diag( mean_t m_t / sigma^2,  2 )                              (2')

(the scores are ((a - k s) s / sigma^2, ((a - k s)^2 - sigma^2) / sigma^3) in (k, sigma);
d/dlog sigma = sigma d/dsigma multiplies the second one by sigma, its square by sigma^2).
"""
from __future__ import annotations

import gymnasium
import numpy as np

ENV_ID = "LinearQuadratic1D-v0"
HORIZON = 10
START_STD = 1.0


class LinearQuadratic1D(gymnasium.Env):
    """s_{t+1} = s_t + a_t, r_t = -s_t^2 - a_t^2, s_0 ~ N(0, start_std^2), `horizon` steps.

    Observations and actions are float64 arrays of shape [1]. An episode is truncated (not
    terminated) after `horizon` steps.
    """

    metadata = {"render_modes": []}

    def __init__(self, horizon: int = HORIZON, start_std: float = START_STD):
        self.horizon, self.start_std = int(horizon), float(start_std)
        self.observation_space = gymnasium.spaces.Box(-np.inf, np.inf, shape=(1,), dtype=np.float64)
        self.action_space = gymnasium.spaces.Box(-np.inf, np.inf, shape=(1,), dtype=np.float64)
        self._state, self._t = 0.0, 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._state, self._t = self.start_std * float(self.np_random.standard_normal()), 0
        return np.array([self._state]), {}

    def step(self, action):
        a = float(np.asarray(action, dtype=np.float64).reshape(-1)[0])
        reward = -self._state**2 - a**2            # r_t = -s_t^2 - a_t^2
        self._state += a                           # s_{t+1} = s_t + a_t
        self._t += 1
        return np.array([self._state]), reward, False, self._t >= self.horizon, {}


if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point=LinearQuadratic1D)


def state_second_moments(k, sigma, horizon: int = HORIZON, start_std: float = START_STD):
    """m_t = E[s_t^2] for t = 0..T-1: array [T, *broadcast(k, sigma).shape], float64."""
    k, sigma = np.broadcast_arrays(np.asarray(k, np.float64), np.asarray(sigma, np.float64))
    c = (1.0 + k) ** 2
    m = np.full(k.shape, start_std**2)
    moments = []
    for _ in range(horizon):
        moments.append(m)
        m = c * m + sigma**2                       # m_{t+1} = c m_t + sigma^2
    return np.stack(moments)


def expected_return(k, sigma, horizon: int = HORIZON, start_std: float = START_STD):
    """The exact J(k, sigma) of equation (1); k and sigma broadcast (NumPy), float64."""
    m = state_second_moments(k, sigma, horizon, start_std)
    return -np.sum((1.0 + np.asarray(k) ** 2) * m + np.asarray(sigma) ** 2, axis=0)


def expected_return_gradient(k, sigma, horizon: int = HORIZON, start_std: float = START_STD):
    """The exact (dJ/dk, dJ/dsigma) of equation (1), each shaped like broadcast(k, sigma)."""
    k, sigma = np.broadcast_arrays(np.asarray(k, np.float64), np.asarray(sigma, np.float64))
    c = (1.0 + k) ** 2
    m, dm_dk, dm_dsigma = np.full(k.shape, start_std**2), np.zeros(k.shape), np.zeros(k.shape)
    dj_dk, dj_dsigma = np.zeros(k.shape), np.zeros(k.shape)
    for _ in range(horizon):
        dj_dk -= 2.0 * k * m + (1.0 + k**2) * dm_dk                  # d/dk of -(1 + k^2) m_t
        dj_dsigma -= (1.0 + k**2) * dm_dsigma + 2.0 * sigma          # d/dsigma of -(1 + k^2) m_t - sigma^2
        m, dm_dk, dm_dsigma = (c * m + sigma**2,
                               2.0 * (1.0 + k) * m + c * dm_dk,
                               c * dm_dsigma + 2.0 * sigma)
    return dj_dk, dj_dsigma


def theta_gradient(k: float, sigma: float, horizon: int = HORIZON, start_std: float = START_STD) -> np.ndarray:
    """grad J in LinearGaussianPolicy's flat coordinates theta = (k, log sigma): [2], float64.

    dJ/dlog sigma = sigma dJ/dsigma (chain rule).
    """
    dj_dk, dj_dsigma = expected_return_gradient(k, sigma, horizon, start_std)
    return np.array([float(dj_dk), float(sigma * dj_dsigma)])


def policy_fisher(k, sigma, horizon: int = HORIZON, start_std: float = START_STD):
    """The diagonal of F(k, sigma), equation (2), in the coordinates (k, sigma): (F_kk, F_sigma_sigma);
    F_k_sigma = 0. In theta = (k, log sigma), equation (2'), the second entry is 2."""
    mean_m = state_second_moments(k, sigma, horizon, start_std).mean(axis=0)
    sigma2 = np.asarray(sigma, np.float64) ** 2
    return mean_m / sigma2, np.broadcast_to(2.0 / sigma2, mean_m.shape)


def optimal_gain(horizon: int = HORIZON, start_std: float = START_STD) -> float:
    """k*: the k in [-2, 0] that maximises J(k, sigma = 0) (-0.618... for large T).

    A grid of J (equation (1)) brackets the maximum; bisection on the sign of the exact
    dJ/dk refines it to machine precision.
    """
    grid = np.linspace(-2.0, 0.0, 2001)
    best = int(np.argmax(expected_return(grid, 0.0, horizon, start_std)))
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, grid.size - 1)]
    for _ in range(60):
        middle = (lo + hi) / 2.0
        if expected_return_gradient(middle, 0.0, horizon, start_std)[0] > 0:  # J still rising
            lo = middle
        else:
            hi = middle
    return float((lo + hi) / 2.0)
