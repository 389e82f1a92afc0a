"""Shared by the Python peers: same reading, shingling and output as neardup's benchmark.

Shingles: lowercase \\w+ runs, word 5-grams (a shorter text is one shingle). Output: one JSON line per
cluster of two or more, `{"members": [{"id": ...}]}`, which scripts/evaluate.py reads.
"""

import json
import re
import sys

WORD = re.compile(r"\w+")


def read_docs(path):
    ids, texts = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                ids.append(str(r["id"]))
                texts.append(r["text"])
    return ids, texts


def shingles(text, n=5):
    words = WORD.findall(text.lower())
    if len(words) < n:
        return [" ".join(words)] if words else []
    return [" ".join(words[i:i + n]) for i in range(len(words) - n + 1)]


def write_clusters(path, ids, edges):
    parent = list(range(len(ids)))

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups = {}
    for i in range(len(ids)):
        groups.setdefault(find(i), []).append(i)
    with open(path, "w", encoding="utf-8") as f:
        for members in groups.values():
            if len(members) > 1:
                f.write(json.dumps({"members": [{"id": ids[m]} for m in members]}) + "\n")


def args():
    if len(sys.argv) != 3:
        raise SystemExit(f"usage: {sys.argv[0]} DOCS.jsonl CLUSTERS.jsonl")
    return sys.argv[1], sys.argv[2]
