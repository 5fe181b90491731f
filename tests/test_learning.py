"""The optional learning check: the grader's own evaluation of a trained policy (NumPy
forward pass, gymnasium CartPole) is exact, and only it is believed: the reference passes,
the stubs fail, and a submission that only reports good returns fails."""
from __future__ import annotations

import json

import numpy as np
import pytest

from grader import learning
from grader import results as res
from grader.config import load_config
from tests.mutants import Case, build
from tests.test_grader import failures, run_grader

# A submission that learns nothing (zero gradients) but makes the training log report a
# return of 500 at every iteration.
LIAR_PATCH = ("\n\nimport hw.train as _train\n_log = _train.Logger.log\n\n\n"
              "def _boast(self, row):\n    return _log(self, {**row, 'return_mean': 500.0})\n\n\n"
              "_train.Logger.log = _boast\n")


def test_numpy_policy_matches_the_tensorflow_policy():
    import hw  # noqa: F401
    import tensorflow as tf

    from hw.policies import CategoricalPolicy
    from hw.utils import get_flat_params, set_flat_params
    policy = CategoricalPolicy(4, 2, (64, 64), seed=3, dtype=tf.float64)
    rng = np.random.default_rng(0)
    params = get_flat_params(policy).numpy() + rng.normal(scale=0.3, size=get_flat_params(policy).shape[0])
    set_flat_params(policy, params)
    observations = rng.normal(size=(7, 4))
    np.testing.assert_allclose(learning.logits(params, [4, 64, 64, 2], observations),
                               policy.predictions(observations).numpy(), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError):
        learning.logits(params[:-1], [4, 64, 64, 2], observations)


def test_judge_scores_only_its_own_evaluation():
    settings = load_config().training
    n = 4 * 64 + 64 + 64 * 64 + 64 + 64 * 2 + 2
    # a policy that always pushes left: CartPole falls within about 10 steps
    left = np.zeros(n)
    left[-2] = 50.0
    boast = {"params": left, "curve": np.full(30, 500.0), "steps": np.array(60_000)}
    evaluation = learning.judge(boast, settings, seed=1)
    assert not evaluation.passed and max(evaluation.returns) < 50
    assert "not reached" in evaluation.message and "as your process reported it" in evaluation.message
    assert not learning.judge({"params": np.full(n, np.nan)}, settings, seed=1).passed
    assert not learning.judge({"curve": [500.0]}, settings, seed=1).passed
    assert learning.judge(boast, settings, seed=1).returns == evaluation.returns  # its own seed: reproducible


def _train(tmp_path, submission, name):
    completed = run_grader("grade", str(submission), "--out", str(tmp_path / name), "--train", "--quiet",
                           "-k", "test_discounted_return", timeout=900)
    assert completed.returncode == 0, completed.stderr[-2000:]
    results = json.loads((tmp_path / name / "results.json").read_text())
    assert res.validate_results(results) == []
    return results, (tmp_path / name / "learning_curve.png")


@pytest.mark.slow
def test_reference_learns_stubs_and_liars_do_not(tmp_path):
    from grader.stubs import ROOT, solution_source
    results, picture = _train(tmp_path, ROOT / "solutions", "reference")
    check = next(t for t in results["tests"] if t["tags"][1] == learning.TEST_KEY)
    assert check["status"] == "passed", res.plain_text(check["output"])
    assert picture.exists()
    assert results["score"] == check["max_score"] + next(
        t["max_score"] for t in results["tests"] if t["tags"][1] == "test_discounted_return")

    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for module in ("policy_gradient", "natural_gradient"):
        (stubs / f"{module}.py").write_text((ROOT / "hw" / f"{module}.py").read_text())
    results, _ = _train(tmp_path, stubs, "stubs")
    assert "TODO" in failures(results)[learning.TEST_KEY]

    liar = build(Case("policy_gradient returns zeros; the training log is patched to report 500",
                      {"policy_gradient": [("    return [-tf.convert_to_tensor(gradient)",
                                            "    return [0.0 * tf.convert_to_tensor(gradient)")]},
                      sources={"policy_gradient": solution_source("policy_gradient") + LIAR_PATCH}),
                 tmp_path / "liar")
    results, _ = _train(tmp_path, liar, "liar")
    message = failures(results)[learning.TEST_KEY]
    assert "not reached" in message and "500" in message  # its boast is shown, and not believed
