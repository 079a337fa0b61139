"""Bandit rollout policy: Beta-Bernoulli Thompson sampling over model variants (plain Python + numpy, no Airflow).

Each round the traffic weights are P(variant is best), estimated from 10,000+ posterior draws and
floored at a minimum weight per live variant. The experiment stops when every variant has enough
rewarded requests and the leader is confidently best with a small expected loss; a guardrail drops
a clearly worse challenger from the first round on (rolling back when none is left); a budget ends
it undecided. Policy, rules and the simulations behind the defaults: docs/bandit.md.

The API an operator needs (every function returns a new state; persist ``state.to_json()`` after
each call and resume with ``ExperimentState.from_json``):

(a) ``state = create_experiment(champion, [challenger, ...], PolicyParams(...), seed=..., now=...)``:
    the champion first, each challenger at the minimum weight; push ``state.weights``.
(b) ``state, record = step(state, Feedback(since=state.cursor, until=new_cursor, served={...},
    successes={...}, failures={...}), now)``: ``served`` counts the requests each variant served since
    the last round, ``successes``/``failures`` the rewards recorded since then for each variant's
    predictions, however late. Then push ``record.next_weights`` and act on ``record.decision``:
    ``action`` is ``continue``, ``promote`` (``winner`` takes all traffic), ``rollback`` (guardrail:
    all traffic to the champion) or ``keep_champion`` (stop rule or budget end), with ``rule``,
    ``reason`` and ``numbers``. Roll back and page for every arm in ``decision.dropped``; page on
    ``record.srm.mismatch``. Re-applying the last delta returns the same state and record.
(c) ``add_arm(state, name)`` / ``remove_arm(state, name, reason)`` between rounds.
(d) ``summary(state)``: winner, requests to decision, regret vs a 50/50 split, reason (JSON-ready).
(e) ``series(state)`` for plots, and ``write_plots(series(state), directory)`` for the PNGs.

``python -m include.rollout.simulate`` runs the same rules on simulated Bernoulli variants.
"""

from include.rollout.accounting import RolloutSeries, series, summary
from include.rollout.experiment import (
    ExperimentEnded,
    FeedbackCursorError,
    add_arm,
    create_experiment,
    remove_arm,
    step,
)
from include.rollout.params import PolicyParams
from include.rollout.report import write_plots
from include.rollout.state import Decision, ExperimentState, Feedback, RoundRecord

__all__ = [
    "Decision",
    "ExperimentEnded",
    "ExperimentState",
    "Feedback",
    "FeedbackCursorError",
    "PolicyParams",
    "RolloutSeries",
    "RoundRecord",
    "add_arm",
    "create_experiment",
    "remove_arm",
    "series",
    "step",
    "summary",
    "write_plots",
]
