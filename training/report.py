"""The evaluation report printed after training (the same numbers are in the manifest)."""

from __future__ import annotations

from models.artifact import describe_index

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


def describe_customers(customers: dict) -> list[str]:
    """Segment counts, the churn model against recency, buy-again coverage."""
    counts = ", ".join(f"{name} {n:,}" for name, n in customers["segments"].items())
    lines = [f"segments ({customers['customers']:,} customers, {customers['purchasing_customers']:,} "
             f"with a purchase; {customers['rules']} rules): {counts}"]
    churn = customers["churn"]
    if "skipped" in churn:
        lines.append(f"churn: skipped, {churn['skipped']}")
    else:
        lines.append(f"churn ({churn['label']}): {churn['chosen'].replace('_', ' ')} AUC "
                     f"{churn['auc']['model']:.3f} vs recency alone {churn['auc']['recency']:.3f} "
                     f"on the window after {churn['test_cutoff'][:10]} ({churn['test_customers']:,} "
                     f"customers, {churn['churn_rate_test']:.0%} churned)")
    rep = customers["repurchase"]
    if rep["items_with_cycle"]:
        lines.append(f"buy again: {rep['items_with_cycle']:,} items with a repurchase cycle "
                     f"({rep['from_item']:,} learned per item, {rep['from_category']:,} from their "
                     "category), "
                     f"median {rep['median_cycle_days']} days")
    return lines


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
    if "customers" in manifest:
        lines += describe_customers(manifest["customers"])
    timings = manifest.get("timings_s", {})
    lines.append("timings: " + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))
    return "\n".join(lines)
