"""The rollout's PNG plots: traffic weights per round, cumulative reward, cumulative regret vs a 50/50 split."""

from __future__ import annotations

from pathlib import Path

from include.rollout.accounting import RolloutSeries


def write_plots(figures: RolloutSeries, directory: Path) -> list[Path]:
    """Write ``weights.png``, ``reward.png`` and ``regret.png`` into ``directory``; returns their paths.

    :raises ValueError: if the series has no round to plot.
    """
    from matplotlib.figure import Figure  # renders with Agg; no pyplot, so no global figure state

    if not figures.requests:
        raise ValueError("the experiment has no round to plot yet")
    directory.mkdir(parents=True, exist_ok=True)
    rounds = list(range(len(figures.requests)))
    written = []

    def save(figure: Figure, name: str) -> None:
        figure.tight_layout()
        figure.savefig(directory / name, dpi=100, format="png")
        written.append(directory / name)

    figure = Figure(figsize=(7, 4))
    axes = figure.subplots()
    axes.stackplot(rounds, *(figures.weights[arm] for arm in figures.arms), labels=figures.arms, step="post", alpha=0.85)
    axes.set(xlabel="round", ylabel="traffic weight", ylim=(0, 1), title="Traffic weights per round")
    axes.legend(loc="upper left", fontsize="small")
    save(figure, "weights.png")

    def compare(name: str, bandit: list[float], bandit_label: str, split: list[float], split_label: str, what: str, title: str) -> None:
        figure = Figure(figsize=(7, 4))
        axes = figure.subplots()
        axes.plot(figures.requests, bandit, label=bandit_label)
        axes.plot(figures.requests, split, "--", label=split_label)
        axes.set(xlabel="requests served", ylabel=what, title=title)
        axes.legend(loc="upper left", fontsize="small")
        save(figure, name)

    compare(
        "reward.png", figures.cumulative_reward, "bandit (rewards recorded)", figures.split_reward,
        "50/50 split (expected)", "cumulative reward", "Cumulative reward",
    )
    compare(
        "regret.png", figures.cumulative_regret, "bandit", figures.split_regret, "50/50 split",
        "cumulative regret", f"Cumulative regret (rates: {figures.rates_source})",
    )
    return written
