"""The Python peers and neardup's Python API, each from texts already in memory to pairs or clusters:
one function per tool, so that the file-based runners (run_*.py, used by scripts/bench-peers) and the
in-memory benchmark (scripts/bench-python) run the same code.

usage: in_memory.py TOOL DOCS.jsonl CLUSTERS.jsonl   (TOOL: neardup, rensa, gaoya, datasketch)
Reads the documents (not timed), runs TOOL on the texts (timed), writes the clusters and prints one
JSON line: tool, seconds, peak RSS in MB after reading and at the end.
"""

import json
import resource
import sys
import time

from common import read_docs, shingles, write_clusters


def rensa_edges(texts):
    """rensa 0.5: RMinHash (128 permutations) built in bulk from token sets, a chunk of documents at
    a time so the shingle strings never all sit in memory, RMinHashLSH at threshold 0.8 with 16
    bands, bulk insert and query, and a check of the signature estimate per pair."""
    from rensa import RMinHash, RMinHashLSH

    chunk = 10_000
    hashes, empty = [], set()
    for start in range(0, len(texts), chunk):
        sets = [shingles(t) for t in texts[start:start + chunk]]
        empty.update(start + i for i, s in enumerate(sets) if not s)
        hashes.extend(RMinHash.from_token_sets(sets, num_perm=128, seed=42))
    lsh = RMinHashLSH(threshold=0.8, num_perm=128, num_bands=16)
    lsh.insert_pairs([(i, m) for i, m in enumerate(hashes) if i not in empty])
    edges = []
    for i, found in enumerate(lsh.query_all(hashes)):
        if i in empty:
            continue
        for j in found:
            if j > i and hashes[i].jaccard(hashes[j]) >= 0.8:
                edges.append((i, j))
    return edges


def gaoya_edges(texts):
    """gaoya 0.2 (Python): MinHashStringIndex with its Rust word analyzer (lowercase, 5-grams),
    32-bit hashes, 9 bands x 13 rows, threshold 0.8 (checked on the signature inside query), bulk
    parallel insert and query, "smallvec" buckets as its docs advise when duplicates are few."""
    import gaoya

    index = gaoya.minhash.MinHashStringIndex(
        hash_size=32, jaccard_threshold=0.8, num_bands=9, band_size=13, num_hashes=117,
        analyzer="word", lowercase=True, ngram_range=(5, 5), id_container="smallvec")
    index.par_bulk_insert_docs(list(range(len(texts))), texts)
    edges = []
    for i, found in enumerate(index.par_bulk_query(texts)):
        edges.extend((i, j) for j in found if j > i)
    return edges


def datasketch_edges(texts):
    """datasketch 2.0: MinHash.bulk signatures, MinHashLSH at threshold 0.8 (its own bands x rows),
    an insertion session, a query per document, and a check of the signature estimate per pair."""
    from datasketch import MinHash, MinHashLSH

    sets = [[s.encode("utf-8") for s in shingles(t)] for t in texts]
    hashes = MinHash.bulk(sets, num_perm=128)
    lsh = MinHashLSH(threshold=0.8, num_perm=128)
    with lsh.insertion_session() as session:
        for i, m in enumerate(hashes):
            if sets[i]:
                session.insert(i, m)
    edges = []
    for i, m in enumerate(hashes):
        if not sets[i]:
            continue
        for j in lsh.query(m):
            if j > i and m.jaccard(hashes[j]) >= 0.8:
                edges.append((i, j))
    return edges


def neardup_edges(texts):
    """neardup's Python API with its defaults (threshold 0.8, 128 permutations, word 5-grams,
    borderline pairs checked on exact Jaccard): each cluster's members joined to its first."""
    import neardup

    edges = []
    for cluster in neardup.Dedup().clusters(texts):
        first = cluster["members"][0]["id"]
        edges.extend((first, m["id"]) for m in cluster["members"][1:])
    return edges


TOOLS = {
    "neardup": neardup_edges,
    "rensa": rensa_edges,
    "gaoya": gaoya_edges,
    "datasketch": datasketch_edges,
}


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in TOOLS:
        raise SystemExit(__doc__)
    tool, docs, out = sys.argv[1:]
    ids, texts = read_docs(docs)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    edges = TOOLS[tool](texts)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    write_clusters(out, ids, edges)
    print(json.dumps({"tool": tool, "seconds": round(seconds, 3),
                      "rss_after_reading_mb": round(before), "peak_rss_mb": round(peak)}))


if __name__ == "__main__":
    main()
