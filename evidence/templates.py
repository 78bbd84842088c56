"""Log lines mined into templates with `drain3`: counts, first seen, new against a baseline.

Drain (He et al., ICWS 2017) groups lines by token count and leading tokens, then
joins a line to the most similar template when enough tokens agree, turning the
tokens that differ into `<*>`. `drain3` is the maintained implementation; it runs
here in memory only (no persistence handler: the lines are untrusted and already
scrubbed by the caller, and nothing outlives one gathering). Variables (times, ids,
addresses, numbers) are masked first through drain3's masking, so "took 12 ms" and
"took 830 ms" are one template from the first line on.

Lines before `baseline_before` train the same miner as the baseline window: a
template that never matched a baseline line is **new**.
"""

import logging
from dataclasses import dataclass

from drain3 import TemplateMiner
from drain3.masking import MaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig

SIMILARITY = 0.5
DEPTH = 4
MAX_TEMPLATES = 200
MAX_TOKENS = 60
WILDCARD = "<*>"

# drain3 logs every new cluster at INFO; a gathering is not worth a log line per template.
logging.getLogger("drain3").setLevel(logging.WARNING)

_MASKS = [
    r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?",
    r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b",
    r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b",
    r"\b0x[0-9a-fA-F]+\b",
    r"\b(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{8,}\b",
    r"(?<![A-Za-z])[-+]?\d+(?:\.\d+)?(?:ms|s|m|h|%|b|kb|mb|gb|KB|MB|GB)?\b",
]


def _config() -> TemplateMinerConfig:
    config = TemplateMinerConfig()
    config.drain_sim_th = SIMILARITY
    config.drain_depth = DEPTH
    config.drain_max_clusters = MAX_TEMPLATES
    config.parametrize_numeric_tokens = True
    # Masks become "<*>", the same wildcard Drain writes for tokens that vary.
    config.mask_prefix, config.mask_suffix = "<", ">"
    config.masking_instructions = [MaskingInstruction(p, "*") for p in _MASKS]
    config.profiling_enabled = False
    return config


@dataclass
class _Stats:
    count: int = 0
    baseline_count: int = 0
    first_seen: float | None = None
    sample: str = ""


def mine(lines: list[tuple[float, str]], *, baseline_before: float) -> list[dict]:
    """Templates of the lines at or after `baseline_before`, most frequent first; each
    says whether it was absent from the lines before (the baseline window)."""
    miner = TemplateMiner(persistence_handler=None, config=_config())
    stats: dict[int, _Stats] = {}
    for when, line in sorted(lines):
        text = " ".join(line.split()[:MAX_TOKENS])
        if not text:
            continue
        found = miner.add_log_message(text)
        cluster_id = found.get("cluster_id")
        if cluster_id is None:
            continue
        row = stats.setdefault(cluster_id, _Stats())
        if when < baseline_before:
            row.baseline_count += 1
            continue
        row.count += 1
        if row.first_seen is None or when < row.first_seen:
            row.first_seen = when
        if not row.sample:
            row.sample = line[:300]
    clusters = miner.drain.id_to_cluster
    out = []
    for cluster_id, row in stats.items():
        cluster = clusters.get(cluster_id)
        if not row.count or cluster is None:  # evicted past MAX_TEMPLATES: too rare to show
            continue
        out.append(
            {
                "template": cluster.get_template(),
                "count": row.count,
                "baseline_count": row.baseline_count,
                "first_seen": row.first_seen,
                "new": row.baseline_count == 0,
                "sample": row.sample,
            }
        )
    out.sort(key=lambda t: (-t["count"], t["first_seen"] or 0))
    return out
