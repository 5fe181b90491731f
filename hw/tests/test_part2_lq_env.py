"""Tests of the provided 1-D example, hw/lq_env.py: the closed-form J(k, sigma), its gradient
and the policy's Fisher against Monte Carlo rollouts of the gymnasium environment.

Monte Carlo tolerances are 4 standard errors of the sample mean (seeded, so repeatable; a
correct closed form would fail with probability about 6e-5 per check for a fresh seed).
"""
import gymnasium
import numpy as np
import pytest

from hw import lq_env

POINTS = [(-1.0, 0.5), (-0.3, 0.8), (-1.6, 0.2)]   # (k, sigma)
EPISODES = 2000


def _rollouts(k, sigma, episodes=EPISODES, seed=0):
    """Returns [E], states [E, T], actions [E, T] from the registered env under a ~ N(k s, sigma^2)."""
    env = gymnasium.make(lq_env.ENV_ID)
    rng = np.random.default_rng(seed)
    returns, states, actions = np.zeros(episodes), [], []
    for episode in range(episodes):
        s, _ = env.reset(seed=seed * 100_000 + episode)
        path_s, path_a, done = [], [], False
        while not done:
            a = k * s + sigma * rng.standard_normal(1)
            path_s.append(s[0])
            path_a.append(a[0])
            s, reward, terminated, truncated, _ = env.step(a)
            returns[episode] += reward
            done = terminated or truncated
        states.append(path_s)
        actions.append(path_a)
    return returns, np.array(states), np.array(actions)


@pytest.fixture(scope="module", params=POINTS, ids=lambda p: f"k={p[0]},sigma={p[1]}")
def rollouts(request):
    k, sigma = request.param
    return (k, sigma, *_rollouts(k, sigma, seed=POINTS.index(request.param)))


def test_env_follows_the_documented_dynamics_and_rewards():
    env = gymnasium.make(lq_env.ENV_ID)
    assert env.observation_space.shape == (1,) and env.action_space.shape == (1,)
    s, _ = env.reset(seed=3)
    for t in range(lq_env.HORIZON):
        a = np.array([0.3 - 0.1 * t])
        s_next, reward, terminated, truncated, _ = env.step(a)
        assert reward == pytest.approx(-s[0] ** 2 - a[0] ** 2), f"step {t}: reward should be -s^2 - a^2"
        assert s_next[0] == pytest.approx(s[0] + a[0]), f"step {t}: next state should be s + a"
        assert not terminated and truncated == (t == lq_env.HORIZON - 1), \
            f"step {t}: the episode should be truncated after exactly T = {lq_env.HORIZON} steps"
        s = s_next


def test_closed_form_return_matches_monte_carlo(rollouts):
    k, sigma, returns, _, _ = rollouts
    exact = float(lq_env.expected_return(k, sigma))
    standard_error = returns.std(ddof=1) / np.sqrt(returns.size)
    assert abs(returns.mean() - exact) < 4 * standard_error, \
        f"J({k}, {sigma}): closed form {exact:.4f}, Monte Carlo {returns.mean():.4f} +- {standard_error:.4f} (1 s.e.)"


def test_state_second_moments_match_monte_carlo(rollouts):
    k, sigma, _, states, _ = rollouts
    exact = lq_env.state_second_moments(k, sigma)
    squares = states**2                                           # [E, T]
    standard_error = squares.std(axis=0, ddof=1) / np.sqrt(squares.shape[0])
    assert np.all(np.abs(squares.mean(axis=0) - exact) < 4 * standard_error), \
        f"E[s_t^2] at k={k}, sigma={sigma}: closed form {exact}, Monte Carlo {squares.mean(axis=0)}"


def test_policy_fisher_matches_monte_carlo_scores(rollouts):
    k, sigma, _, states, actions = rollouts
    noise = actions - k * states                                  # a - k s
    score_k = (noise * states / sigma**2).ravel()                 # d log pi / dk
    score_sigma = ((noise**2 - sigma**2) / sigma**3).ravel()      # d log pi / dsigma
    fisher_kk, fisher_ss = lq_env.policy_fisher(k, sigma)
    for name, samples, exact in [("F_kk", score_k**2, fisher_kk), ("F_sigma_sigma", score_sigma**2, fisher_ss),
                                 ("F_k_sigma", score_k * score_sigma, 0.0)]:
        # Samples within an episode are correlated: the standard error uses episode means.
        per_episode = samples.reshape(states.shape).mean(axis=1)
        standard_error = per_episode.std(ddof=1) / np.sqrt(per_episode.size)
        assert abs(samples.mean() - exact) < 4 * standard_error, \
            f"{name} at k={k}, sigma={sigma}: closed form {float(exact):.4f}, Monte Carlo {samples.mean():.4f}"


@pytest.mark.parametrize("k,sigma", POINTS + [(-0.618, 0.05), (0.2, 1.3)])
def test_gradient_matches_finite_differences_of_the_closed_form(k, sigma):
    h = 1e-6
    dj_dk, dj_dsigma = lq_env.expected_return_gradient(k, sigma)
    fd_k = (lq_env.expected_return(k + h, sigma) - lq_env.expected_return(k - h, sigma)) / (2 * h)
    fd_sigma = (lq_env.expected_return(k, sigma + h) - lq_env.expected_return(k, sigma - h)) / (2 * h)
    np.testing.assert_allclose([dj_dk, dj_dsigma], [fd_k, fd_sigma], rtol=1e-6, atol=1e-6)
    log_h = 1e-6  # theta = (k, log sigma)
    fd_log_sigma = (lq_env.expected_return(k, sigma * np.exp(log_h))
                    - lq_env.expected_return(k, sigma * np.exp(-log_h))) / (2 * log_h)
    np.testing.assert_allclose(lq_env.theta_gradient(k, sigma), [fd_k, fd_log_sigma], rtol=1e-6, atol=1e-6)


def test_closed_form_broadcasts_over_a_grid():
    k, sigma = np.meshgrid(np.linspace(-2, 0, 5), np.linspace(0.1, 1, 3))
    J = lq_env.expected_return(k, sigma)
    assert J.shape == (3, 5)
    assert J[1, 2] == pytest.approx(float(lq_env.expected_return(k[1, 2], sigma[1, 2])))
    assert all(part.shape == (3, 5) for part in lq_env.expected_return_gradient(k, sigma))
    assert all(part.shape == (3, 5) for part in lq_env.policy_fisher(k, sigma))


def test_the_optimum_is_deterministic_with_the_lqr_gain():
    k_star = lq_env.optimal_gain()
    assert k_star == pytest.approx((1 - np.sqrt(5)) / 2, abs=1e-6), "T = 10: k* should be the LQR gain -0.618..."
    assert lq_env.expected_return_gradient(k_star, 0.0)[0] == pytest.approx(0.0, abs=1e-9)
    grid = np.linspace(-2, 0, 401)
    assert lq_env.expected_return(grid, 0.0).max() <= lq_env.expected_return(k_star, 0.0) + 1e-12
    for sigma in (0.01, 0.3, 1.0):  # noise only costs
        assert lq_env.expected_return(k_star, sigma) < lq_env.expected_return(k_star, 0.0)
        assert lq_env.expected_return_gradient(-1.0, sigma)[1] < 0
    assert lq_env.expected_return(-1.0, 0.0) == pytest.approx(-2.0)   # the lecture's k = -1: cost 2 m_0
    assert lq_env.optimal_gain(horizon=2) == pytest.approx(-0.5)
