#!/usr/bin/env python3
"""Score neardup `clusters` output.

Against a truth file (TSV with header; columns id, cluster, and optionally category or transform):
pair precision, recall, F1, adjusted Rand index, and per-category recall (a document counts as found
when its predicted cluster holds another member of its true cluster; for category `non`, and other
singleton truths, the share kept apart from everything is reported instead).

Against exact Jaccard computed here from the documents (word n-grams of lowercase \\w+ runs, all
pairs at or above the threshold found with prefix filtering, so no pair is missed): precision, recall
and F1 of predicted pairs against the pairs of the connected components of the exact graph, and the
share of exact edges whose two documents were clustered together.

usage: evaluate.py --clusters CLUSTERS.jsonl [--truth TRUTH.tsv] [--docs DOCS.jsonl]
                   [--truth-clusters REF.jsonl] [--threshold 0.8] [--ngram 5] [--json OUT.json]
                   [--pairs-cache FILE]
"""

import argparse
import collections
import json
import math
import os
import re
import sys

WORD = re.compile(r"\w+")


def read_clusters(path):
    clusters = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                clusters.append([m["id"] for m in json.loads(line)["members"]])
    return clusters


def read_truth(path):
    labels, categories = {}, {}
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        cat_col = next((i for i, h in enumerate(header) if h in ("category", "transform")), None)
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 2:
                continue
            labels[parts[0]] = parts[1]
            if cat_col is not None and cat_col < len(parts):
                categories[parts[0]] = parts[cat_col]
    return labels, categories


def pairs_of(groups):
    out = set()
    for g in groups:
        g = sorted(g)
        for i in range(len(g)):
            for j in range(i + 1, len(g)):
                out.add((g[i], g[j]))
    return out


def prf(predicted, truth):
    tp = len(predicted & truth)
    p = tp / len(predicted) if predicted else 1.0
    r = tp / len(truth) if truth else 1.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f, "predicted_pairs": len(predicted),
            "true_pairs": len(truth), "true_positives": tp}


def label_map(groups, universe):
    """Document -> label; documents in no group get a singleton label of their own."""
    labels = {}
    for i, g in enumerate(groups):
        for d in g:
            labels[d] = ("c", i)
    for d in universe:
        labels.setdefault(d, ("s", d))
    return labels


def adjusted_rand(a, b, universe):
    comb = lambda n: n * (n - 1) / 2
    table = collections.Counter((a[d], b[d]) for d in universe)
    rows = collections.Counter(a[d] for d in universe)
    cols = collections.Counter(b[d] for d in universe)
    index = sum(comb(n) for n in table.values())
    sum_rows = sum(comb(n) for n in rows.values())
    sum_cols = sum(comb(n) for n in cols.values())
    total = comb(len(universe))
    expected = sum_rows * sum_cols / total if total else 0.0
    maximum = (sum_rows + sum_cols) / 2
    return 1.0 if maximum == expected else (index - expected) / (maximum - expected)


def shingles(text, n):
    words = WORD.findall(text.lower())
    if not words:
        return frozenset()
    if len(words) < n:
        return frozenset([hash(tuple(words))])
    return frozenset(hash(tuple(words[i:i + n])) for i in range(len(words) - n + 1))


def exact_pairs(docs, threshold, n):
    """All pairs with Jaccard >= threshold, by prefix filtering over globally rarest-first shingles."""
    sets = {d: shingles(t, n) for d, t in docs.items()}
    freq = collections.Counter(s for v in sets.values() for s in v)
    ordered = {d: sorted(v, key=lambda s: (freq[s], s)) for d, v in sets.items() if v}
    index = collections.defaultdict(list)
    for d, toks in ordered.items():
        prefix = len(toks) - math.ceil(threshold * len(toks) - 1e-9) + 1
        for tok in toks[:prefix]:
            index[tok].append(d)
    found = {}
    for d, toks in ordered.items():
        prefix = len(toks) - math.ceil(threshold * len(toks) - 1e-9) + 1
        candidates = set()
        for tok in toks[:prefix]:
            candidates.update(index[tok])
        a = sets[d]
        for c in candidates:
            if c <= d:
                continue
            b = sets[c]
            if min(len(a), len(b)) < threshold * max(len(a), len(b)):
                continue
            j = len(a & b) / len(a | b)
            if j >= threshold - 1e-12:
                found[(d, c)] = j
    return found


def components(edges, universe):
    parent = {d: d for d in universe}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb
    groups = collections.defaultdict(list)
    for d in universe:
        groups[find(d)].append(d)
    return [g for g in groups.values() if len(g) > 1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clusters", required=True)
    ap.add_argument("--truth")
    ap.add_argument("--docs")
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--ngram", type=int, default=5)
    ap.add_argument("--json")
    ap.add_argument("--pairs-cache", help="store the exact pairs here, and reuse them when present")
    ap.add_argument("--truth-clusters",
                    help="reference clusters (JSON lines with members), e.g. the exact components "
                         "written by `cargo run --release --example exact_truth`")
    args = ap.parse_args()

    predicted_groups = read_clusters(args.clusters)
    predicted = pairs_of(predicted_groups)
    report = {"clusters": len(predicted_groups)}

    if args.truth:
        labels, categories = read_truth(args.truth)
        by_label = collections.defaultdict(list)
        for d, l in labels.items():
            by_label[l].append(d)
        truth_groups = [g for g in by_label.values() if len(g) > 1]
        universe = list(labels)
        report["truth"] = prf(predicted, pairs_of(truth_groups))
        report["truth"]["adjusted_rand"] = adjusted_rand(
            label_map(predicted_groups, universe), label_map(truth_groups, universe), universe)
        if categories:
            cluster_of = {d: i for i, g in enumerate(predicted_groups) for d in g}
            mates = collections.defaultdict(set)
            for g in predicted_groups:
                for d in g:
                    mates[d] = set(g) - {d}
            per = collections.defaultdict(lambda: [0, 0])
            for d, cat in categories.items():
                truth_mates = set(by_label[labels[d]]) - {d}
                if truth_mates:
                    per[cat][1] += 1
                    per[cat][0] += bool(mates.get(d, set()) & truth_mates)
                else:
                    key = cat + " (kept apart)"
                    per[key][1] += 1
                    per[key][0] += d not in cluster_of
            report["per_category"] = {c: {"share": v[0] / v[1], "found": v[0], "of": v[1]}
                                      for c, v in sorted(per.items())}

    if args.docs:
        docs = {}
        with open(args.docs, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    docs[str(r["id"])] = r.get("text", "")
        edges = None
        key = f"{args.docs}|{args.threshold}|{args.ngram}"
        if args.pairs_cache and os.path.exists(args.pairs_cache):
            with open(args.pairs_cache, encoding="utf-8") as f:
                cached = json.load(f)
            if cached.get("key") == key:
                edges = {(a, b): j for a, b, j in cached["pairs"]}
        if edges is None:
            edges = exact_pairs(docs, args.threshold, args.ngram)
            if args.pairs_cache:
                with open(args.pairs_cache, "w", encoding="utf-8") as f:
                    json.dump({"key": key, "pairs": [[a, b, j] for (a, b), j in edges.items()]}, f)
        groups = components(edges.keys(), list(docs))
        report["exact_components"] = prf(predicted, pairs_of(groups))
        together = sum(1 for a, b in edges if (min(a, b), max(a, b)) in predicted)
        report["exact_edges"] = {"pairs": len(edges), "clustered_together": together,
                                 "recall": together / len(edges) if edges else 1.0}

    if args.truth_clusters:
        report["truth_clusters"] = prf(predicted, pairs_of(read_clusters(args.truth_clusters)))

    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
