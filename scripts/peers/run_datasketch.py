"""datasketch 2.0: MinHash.bulk signatures, MinHashLSH at threshold 0.8 (its own bands x rows),
an insertion session, a query per document, and a check of the signature estimate per pair."""

from datasketch import MinHash, MinHashLSH

from common import args, read_docs, shingles, write_clusters

docs, out = args()
ids, texts = read_docs(docs)
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
write_clusters(out, ids, edges)
