"""The evaluation report printed after training (the same numbers are in the manifest)."""

from __future__ import annotations

from training.index import HEAD_DEPTH, RECALL_K

METRICS = ("recall@20", "recall@50", "ndcg@100", "coverage@20")


def _table(title: str, summary: dict) -> list[str]:
    lines = [f"{title} ({summary['seeds']} seed(s), {summary['users_per_seed']} users each)",
             f"  {'metric':<13}{'model':>16}{'popularity':>16}{'ratio':>8}"]
    for m in METRICS:
        model, pop = summary["model"][m], summary["popularity"][m]
        ratio = f"{model['mean'] / pop['mean']:.2f}" if pop["mean"] else "-"
        lines.append(f"  {m:<13}{model['mean']:>9.4f} ±{model['std']:.3f}"
                     f"{pop['mean']:>9.4f} ±{pop['std']:.3f}{ratio:>8}")
    return lines


def describe_index(index: dict) -> str:
    """One line for a manifest's index description."""
    if index.get("head_items"):
        return (f"{index['kind']}, the {index['head_items']:,} largest-norm items, "
                f"recall@{RECALL_K} {index['recall_at_50']:.3f}, "
                f"recall@{HEAD_DEPTH} {index['recall_at_head_depth']:.3f} vs exact")
    if index.get("nlist"):
        return (f"{index['kind']}, nlist {index['nlist']}, nprobe {index['nprobe']}, "
                f"recall@{RECALL_K} {index['recall_at_50']:.3f} vs exact")
    return f"{index['kind']} (exact)"


def format_report(manifest: dict) -> str:
    lines = [f"model {manifest['version']}: {manifest['counts']['items']:,} items, "
             f"{manifest['counts']['users']:,} users, {manifest['counts']['interactions']:,} interactions"]
    metrics = manifest.get("metrics", {})
    if "strong_generalization" in metrics:
        lines += _table("strong generalization", metrics["strong_generalization"])
    if "temporal" in metrics:
        lines += _table("temporal (next purchases after the cutoff)", metrics["temporal"])
    index = manifest["index"]
    lines.append(f"index: {describe_index(index)}")
    timings = manifest.get("timings_s", {})
    lines.append("timings: " + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))
    return "\n".join(lines)
