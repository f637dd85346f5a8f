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


def describe_model(manifest: dict) -> list[str]:
    """Which family and parameters rank sessions, and what the search saw on validation."""
    model, serving = manifest.get("model"), manifest.get("serving", {})
    if not model:
        return []
    als = model["als"]
    line = (f"model: {model['family']}; ALS {als['factors']} factors, regularization "
            f"{als['regularization']:g}, alpha {als['alpha']:g}, {als['iterations']} iterations")
    if "itemitem" in model:
        ii = model["itemitem"]
        line += f"; EASE λ {ii['lambda']:g}, {ii['neighbours']} neighbours per item"
    b = serving.get("blend", {})
    lines = [line, f"  sessions: fold-in weight {b.get('foldin_weight', 1.0):g}, item-item "
                   f"{b.get('itemitem_weight', 0.0):g}, popularity exponent "
                   f"{b.get('popularity_exponent', 0):g}, prior c {b.get('prior_c', 0):g} "
                   f"(power {b.get('prior_power', 1):g}); "
                   f"the {serving.get('session_items', 50)} most recent items folded in"]
    search = manifest.get("search")
    if not search or "skipped" in search:
        why = f"skipped, {search['skipped']}" if search else "off"
        return lines + [f"  model search: {why} (the configured parameters)"]
    v, w = search["validation"], search["winner"]
    others = ", ".join(f"{name} {score:.4f}" for name, score in search["families"].items()
                       if name != w["family"])
    margin = f" (+{w['margin']:.4f} over {w['runner_up']})" if w.get("runner_up") else ""
    lines.append(f"  model search ({search['mode']}, {v['folds']} fold(s), {v['users']} validation users, "
                 f"none of the {v['excluded_held_out_users']} held-out; {search['seconds']:.0f} s): "
                 f"{w['family']} won with {w['score']:.4f}{margin}; {others}; "
                 f"today's defaults {search['defaults_score']:.4f} (objective: {search['objective']})")
    return lines


def _sessions(summary: dict) -> list[str]:
    """Short sessions against popularity on the same targets (Recall@20)."""
    lines = []
    for n, rows in summary.get("sessions", {}).items():
        model, pop = rows["model"]["recall@20"]["mean"], rows["popularity"]["recall@20"]["mean"]
        verdict = "≥" if model >= pop else "<"
        lines.append(f"  {n}-item sessions: recall@20 {model:.4f} {verdict} popularity {pop:.4f}")
    return lines


def format_report(manifest: dict) -> str:
    lines = [f"model {manifest['version']}: {manifest['counts']['items']:,} items, "
             f"{manifest['counts']['users']:,} users, {manifest['counts']['interactions']:,} interactions"]
    metrics = manifest.get("metrics", {})
    lines += describe_model(manifest)
    if "strong_generalization" in metrics:
        lines += _table("strong generalization", metrics["strong_generalization"])
        lines += _sessions(metrics["strong_generalization"])
    if "temporal" in metrics:
        lines += _table("temporal (next purchases after the cutoff)", metrics["temporal"])
    index = manifest["index"]
    lines.append(f"index: {describe_index(index)}")
    if "customers" in manifest:
        lines += describe_customers(manifest["customers"])
    timings = manifest.get("timings_s", {})
    lines.append("timings: " + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))
    return "\n".join(lines)
