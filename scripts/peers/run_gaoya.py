"""gaoya 0.2 (Python): MinHashStringIndex with its Rust word analyzer (lowercase, 5-grams), 32-bit
hashes, 9 bands x 13 rows, threshold 0.8 (checked on the signature inside query), bulk parallel
insert and query, "smallvec" buckets as its docs advise when duplicates are few."""

import gaoya

from common import args, read_docs, write_clusters

docs, out = args()
ids, texts = read_docs(docs)
index = gaoya.minhash.MinHashStringIndex(
    hash_size=32, jaccard_threshold=0.8, num_bands=9, band_size=13, num_hashes=117,
    analyzer="word", lowercase=True, ngram_range=(5, 5), id_container="smallvec")
index.par_bulk_insert_docs(list(range(len(ids))), texts)
edges = []
for i, found in enumerate(index.par_bulk_query(texts)):
    edges.extend((i, j) for j in found if j > i)
write_clusters(out, ids, edges)
