"""Few-seed statistics of learning results with ``rliable`` (Agarwal et al., NeurIPS 2021).

Scores are normalised per environment by the baseline actor's mean score there (MLP-normalised: the
baseline scores 1.0 on average). For each actor, per environment and over all environments:

- **IQM**: interquartile mean of the normalised scores, with a stratified-bootstrap 95 % confidence
  interval (strata: environments);
- **probability of improvement** P(X > Y) of one actor over another, with its bootstrap interval;
- a **performance profile**: the fraction of runs whose normalised score exceeds each threshold τ.

A comparison is called separable only when the interval of P(X > Y) excludes 0.5; otherwise the honest
result is "not separable with N seeds". Arrays are ``[runs, environments]``: every actor needs the same
seeds in every environment it is compared on, so only seeds present in all of them are used.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CONFIDENCE = 0.95
BOOTSTRAP_REPS = 2000
BOOTSTRAP_SEED = 0
DEFAULT_PAIRS = (("ilcsan", "mlp"), ("noisysan", "ilcsan"), ("popsan", "ilcsan"))


@dataclass(frozen=True)
class Interval:
    """A point estimate with its confidence interval."""

    value: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.value:.2f} [{self.low:.2f}, {self.high:.2f}]"


@dataclass(frozen=True)
class Improvement:
    """P(actor > other) over normalised scores, and what the interval allows one to say."""

    actor: str
    other: str
    seeds: int
    probability: Interval

    @property
    def verdict(self) -> str:
        if self.probability.low > 0.5:
            return f"{self.actor} better than {self.other}"
        if self.probability.high < 0.5:
            return f"{self.other} better than {self.actor}"
        return f"not separable with {self.seeds} seed{'' if self.seeds == 1 else 's'}"


def normalised_scores(
    scores: dict[tuple[str, str], dict[int, float]], baseline: str, envs: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """``{(env, actor): {seed: score}}`` -> ``{actor: [seeds, envs]}`` divided by the baseline's mean per env.

    Environments without the baseline are dropped; an actor keeps the seeds it has in every environment.
    """
    all_envs = sorted({env for env, _ in scores} if envs is None else set(envs))
    reference = {
        env: float(np.mean(list(scores[(env, baseline)].values()))) for env in all_envs if (env, baseline) in scores
    }
    kept_envs = [env for env in all_envs if reference.get(env)]
    if not kept_envs:
        raise ValueError(f"no environment has scores of the baseline actor {baseline!r}")
    result = {}
    for actor in sorted({actor for _, actor in scores}):
        if not all((env, actor) in scores for env in kept_envs):
            continue
        seeds = sorted(set.intersection(*(set(scores[(env, actor)]) for env in kept_envs)))
        if seeds:
            result[actor] = np.array(
                [[scores[(env, actor)][seed] / abs(reference[env]) for env in kept_envs] for seed in seeds]
            )
    return result


@contextmanager
def _seeded_numpy() -> Iterator[None]:
    """rliable resamples with NumPy's global generator: seed it for repeatable intervals, then restore it."""
    state = np.random.get_state()
    np.random.seed(BOOTSTRAP_SEED)
    try:
        yield
    finally:
        np.random.set_state(state)


def _interval_estimates(score_dict: dict, func, reps: int) -> dict[str, Interval]:
    """rliable's stratified-bootstrap estimates of ``func`` (which returns one number) for every key."""
    from rliable import library

    with _seeded_numpy():
        points, intervals = library.get_interval_estimates(
            score_dict, func, reps=reps, confidence_interval_size=CONFIDENCE
        )
    return {key: Interval(float(np.ravel(points[key])[0]), *map(float, np.ravel(intervals[key])[:2])) for key in points}


def iqm_intervals(normalised: dict[str, np.ndarray], reps: int = BOOTSTRAP_REPS) -> dict[str, Interval]:
    """IQM of each actor's ``[runs, envs]`` scores with its stratified-bootstrap interval."""
    from rliable import metrics

    return _interval_estimates(normalised, lambda x: np.array([metrics.aggregate_iqm(x)]), reps)


def probabilities_of_improvement(
    normalised: dict[str, np.ndarray], pairs: Sequence[tuple[str, str]] = DEFAULT_PAIRS, reps: int = BOOTSTRAP_REPS
) -> list[Improvement]:
    """P(X > Y) for each ``(X, Y)`` of ``pairs`` whose actors both have scores, on their common seeds."""
    from rliable import metrics

    pair_scores = {
        f"{actor},{other}": [normalised[actor], normalised[other]]
        for actor, other in pairs
        if actor in normalised and other in normalised
    }
    if not pair_scores:
        return []
    estimates = _interval_estimates(pair_scores, metrics.probability_of_improvement, reps)
    result = []
    for key, (x, y) in pair_scores.items():
        actor, other = key.split(",")
        result.append(Improvement(actor, other, min(len(x), len(y)), estimates[key]))
    return result


def plot_performance_profile(normalised: dict[str, np.ndarray], path: Path, title: str, reps: int = 500) -> Path:
    """Performance profiles (fraction of runs with normalised score > τ) with bootstrap bands, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from rliable import library, plot_utils

    high = max(1.5, max(float(x.max()) for x in normalised.values()) * 1.05)
    taus = np.linspace(0.0, high, 61)
    with _seeded_numpy():
        profiles, cis = library.create_performance_profile(normalised, taus, reps=reps)
    colours = dict(zip(sorted(profiles), plt.get_cmap("tab10").colors))
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    plot_utils.plot_performance_profiles(
        profiles, taus, performance_profile_cis=cis, colors=colours, xlabel=r"normalised score $\tau$", ax=ax
    )
    ax.set_title(title, fontsize=10)
    ax.legend(handles=[Line2D([0], [0], color=c, label=name) for name, c in colours.items()], fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def mean_confidence_band(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over rows of ``[seeds, points]`` and the half-width of its Student-t 95 % interval (0 for 1 seed)."""
    from scipy import stats

    matrix = np.asarray(matrix, dtype=float)
    mean = matrix.mean(0)
    if len(matrix) < 2:
        return mean, np.zeros_like(mean)
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, len(matrix) - 1) * matrix.std(0, ddof=1) / np.sqrt(len(matrix))
    return mean, half


def markdown_statistics(
    scores: dict[tuple[str, str], dict[int, float]], baseline: str, statistic: str, reps: int = BOOTSTRAP_REPS
) -> str:
    """Tables of IQM intervals (per environment and overall) and probabilities of improvement."""
    envs = sorted({env for env, actor in scores if actor == baseline})
    overall = normalised_scores(scores, baseline)
    per_env = {env: normalised_scores(scores, baseline, [env]) for env in envs}
    actors = sorted(overall)
    lines = [
        f"IQM of {baseline}-normalised {statistic} return, 95 % stratified-bootstrap CI ({reps} resamples):",
        "",
        f"| actor | seeds | {' | '.join(envs)} | all envs |",
        "|---|---|" + "---|" * (len(envs) + 1),
    ]
    env_iqms = {env: iqm_intervals(per_env[env], reps) for env in envs}
    all_iqm = iqm_intervals(overall, reps)
    for actor in actors:
        cells = [str(env_iqms[env][actor]) if actor in env_iqms[env] else "–" for env in envs]
        lines.append(f"| {actor} | {len(overall[actor])} | {' | '.join(cells)} | {all_iqm[actor]} |")
    improvements = probabilities_of_improvement(overall, reps=reps)
    if improvements:
        lines += ["", "| comparison | P(X > Y), 95 % CI | verdict |", "|---|---|---|"]
        for item in improvements:
            lines.append(f"| {item.actor} vs {item.other} | {item.probability} | {item.verdict} |")
    return "\n".join(lines) + "\n"
