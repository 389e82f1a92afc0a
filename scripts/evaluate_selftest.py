#!/usr/bin/env python3
"""Checks scripts/evaluate.py against hand-computed answers and brute force. Exits non-zero on failure."""

import itertools
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evaluate as ev  # noqa: E402


def check(name, got, want, tol=1e-9):
    if abs(got - want) > tol:
        raise SystemExit(f"FAIL {name}: got {got}, want {want}")


def main():
    # Pairs: predicted {ab, ac, bc, de}; truth {ab, de, df, ef}: 2 hits.
    predicted = ev.pairs_of([["a", "b", "c"], ["d", "e"]])
    truth = ev.pairs_of([["a", "b"], ["d", "e", "f"]])
    r = ev.prf(predicted, truth)
    check("precision", r["precision"], 2 / 4)
    check("recall", r["recall"], 2 / 4)
    check("f1", r["f1"], 0.5)
    universe = list("abcdefg")
    same = ev.label_map([["a", "b"], ["d", "e", "f"]], universe)
    check("ari identical", ev.adjusted_rand(same, same, universe), 1.0)

    # Prefix filtering finds exactly the brute-force pairs.
    rng = random.Random(4)
    words = [f"w{i}" for i in range(40)]
    base = [" ".join(rng.choice(words) for _ in range(30)) for _ in range(15)]
    docs = {}
    for i, text in enumerate(base):
        docs[f"o{i}"] = text
        toks = text.split()
        for k in range(3):
            edited = list(toks)
            for _ in range(k):
                edited[rng.randrange(len(edited))] = rng.choice(words)
            docs[f"o{i}e{k}"] = " ".join(edited)
    for threshold in (0.5, 0.8):
        got = ev.exact_pairs(docs, threshold, 3)
        sets = {d: ev.shingles(t, 3) for d, t in docs.items()}
        brute = {}
        for a, b in itertools.combinations(sorted(docs), 2):
            j = len(sets[a] & sets[b]) / len(sets[a] | sets[b])
            if j >= threshold:
                brute[(a, b)] = j
        if set(got) != set(brute):
            raise SystemExit(f"FAIL prefix filter at {threshold}: {len(got)} vs {len(brute)} pairs")
    print("evaluate.py self-check: 6 passed, 0 failed")


if __name__ == "__main__":
    main()
