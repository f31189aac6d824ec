"""Few-seed statistics (experiments.statistics, rliable): hand-computed IQM, probability of improvement,
normalisation, confidence bands, and the verdict wording that the results docs follow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from experiments.statistics import (
    Improvement,
    Interval,
    iqm_intervals,
    markdown_statistics,
    mean_confidence_band,
    normalised_scores,
    plot_performance_profile,
    probabilities_of_improvement,
)

SCORES = {
    ("A", "mlp"): {0: 100.0, 1: 200.0, 2: 300.0},
    ("A", "ilcsan"): {0: 150.0, 1: 250.0, 2: 350.0, 3: 999.0},  # seed 3 is missing on B: dropped
    ("B", "mlp"): {0: 10.0, 1: 10.0, 2: 10.0},
    ("B", "ilcsan"): {0: 5.0, 1: 20.0, 2: 12.0},
    ("C", "ilcsan"): {0: 1.0},  # no baseline on C: C is dropped
}


def test_normalised_by_baseline_mean_on_common_seeds() -> None:
    normalised = normalised_scores(SCORES, "mlp")
    np.testing.assert_allclose(normalised["mlp"], [[0.5, 1.0], [1.0, 1.0], [1.5, 1.0]])
    np.testing.assert_allclose(normalised["ilcsan"], [[0.75, 0.5], [1.25, 2.0], [1.75, 1.2]])
    with pytest.raises(ValueError, match="baseline actor 'ppo'"):
        normalised_scores(SCORES, "ppo")


def test_iqm_is_the_interquartile_mean_with_an_interval_around_it() -> None:
    estimate = iqm_intervals({"x": np.arange(1.0, 9.0).reshape(8, 1)}, reps=300)["x"]
    assert estimate.value == pytest.approx(4.5)  # mean of 3, 4, 5, 6: the middle half of 1..8
    assert 1.0 <= estimate.low < 4.5 < estimate.high <= 8.0
    # repeatable: the bootstrap has a fixed seed
    assert iqm_intervals({"x": np.arange(1.0, 9.0).reshape(8, 1)}, reps=300)["x"] == estimate


def test_probability_of_improvement_and_verdicts() -> None:
    better = {"ilcsan": np.array([[3.0], [4.0], [5.0]]), "mlp": np.array([[0.0], [1.0], [2.0]])}
    (item,) = probabilities_of_improvement(better, [("ilcsan", "mlp")], reps=300)
    assert item.probability == Interval(1.0, 1.0, 1.0) and item.verdict == "ilcsan better than mlp"
    (item,) = probabilities_of_improvement(better, [("mlp", "ilcsan")], reps=300)
    assert item.probability.value == 0.0 and item.verdict == "ilcsan better than mlp"
    overlapping = {"ilcsan": np.array([[1.0], [3.0]]), "mlp": np.array([[2.0], [4.0]])}
    (item,) = probabilities_of_improvement(overlapping, [("ilcsan", "mlp")], reps=300)
    assert item.probability.value == pytest.approx(0.25)  # 1 of the 4 pairs (3 > 2) favours ilcsan
    assert item.verdict == "not separable with 2 seeds"
    assert probabilities_of_improvement(overlapping, [("popsan", "ilcsan")]) == []  # popsan did not run
    assert Improvement("a", "b", 5, Interval(0.6, 0.4, 0.8)).verdict == "not separable with 5 seeds"
    assert Improvement("a", "b", 1, Interval(0.5, 0.5, 0.5)).verdict == "not separable with 1 seed"


def test_confidence_band_is_the_student_t_interval() -> None:
    mean, half = mean_confidence_band(np.array([[1.0, 2.0], [3.0, 4.0]]))
    np.testing.assert_allclose(mean, [2.0, 3.0])
    np.testing.assert_allclose(half, [12.7062047, 12.7062047])  # t(0.975, 1) * sqrt(2) / sqrt(2)
    np.testing.assert_allclose(mean_confidence_band(np.array([[5.0, 6.0]]))[1], [0.0, 0.0])


def test_markdown_tables_and_performance_profile(tmp_path: Path) -> None:
    text = markdown_statistics(SCORES, "mlp", "final", reps=200)
    assert "| actor | seeds | A | B | all envs |" in text
    assert "| mlp | 3 | 1.00 [" in text  # the baseline's IQM is 1 by construction here
    assert "| ilcsan vs mlp | 0.67 [" in text and "not separable with 3 seeds" in text
    image = plot_performance_profile(normalised_scores(SCORES, "mlp"), tmp_path / "profile.png", "test", reps=100)
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
