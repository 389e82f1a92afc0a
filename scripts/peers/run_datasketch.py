"""The datasketch peer of scripts/bench-peers: reads DOCS.jsonl, runs in_memory.datasketch_edges (documented
there) and writes the clusters."""

from common import args, read_docs, write_clusters
from in_memory import datasketch_edges

docs, out = args()
ids, texts = read_docs(docs)
write_clusters(out, ids, datasketch_edges(texts))
