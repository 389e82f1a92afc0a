"""rensa 0.5: RMinHash (128 permutations) built in bulk from token sets, a chunk of documents at a
time so the shingle strings never all sit in memory, RMinHashLSH at threshold 0.8 with 16 bands,
bulk insert and query, and a check of the signature estimate per pair."""

from rensa import RMinHash, RMinHashLSH

from common import args, read_docs, shingles, write_clusters

CHUNK = 10_000

docs, out = args()
ids, texts = read_docs(docs)
hashes, empty = [], set()
for start in range(0, len(texts), CHUNK):
    sets = [shingles(t) for t in texts[start:start + CHUNK]]
    empty.update(start + i for i, s in enumerate(sets) if not s)
    hashes.extend(RMinHash.from_token_sets(sets, num_perm=128, seed=42))
del texts
lsh = RMinHashLSH(threshold=0.8, num_perm=128, num_bands=16)
lsh.insert_pairs([(i, m) for i, m in enumerate(hashes) if i not in empty])
edges = []
for i, found in enumerate(lsh.query_all(hashes)):
    if i in empty:
        continue
    for j in found:
        if j > i and hashes[i].jaccard(hashes[j]) >= 0.8:
            edges.append((i, j))
write_clusters(out, ids, edges)
