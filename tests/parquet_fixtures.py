#!/usr/bin/env python3
"""Parquet fixtures for neardup's integration tests, written and read by pyarrow (an independent
implementation of Parquet).

  write IN.jsonl OUT.parquet [--rows-per-group N] [--compression snappy|zstd] [--text-type T]
      Rows of IN's records ({"id", "text"}) with more columns: `lang` (dictionary of strings),
      `meta` (a struct: `url`, `words`), `n` (int64), and key-value metadata {"origin": "tests"}.
      T is string, large_string, string_view or dictionary. A record without "text" (or with
      a null one) gets a null text.
  read FILE.parquet
      Prints {"schema", "metadata", "num_row_groups", "rows"} as JSON: the schema as pyarrow
      prints it, the file's key-value metadata, and every row (values as JSON).
  same-schema A.parquet B.parquet
      Prints true when both files have the same schema, metadata included.
  corrupt IN.parquet OUT.parquet GROUP [COLUMN]
      A copy of IN whose COLUMN's data (default `text`) in row group GROUP is overwritten with
      junk (the footer intact), so that column of that group cannot be decoded.
  truncate IN.parquet OUT.parquet
      The first half of IN (its footer gone).
  binary-text OUT.parquet
      A file whose `text` column is binary, one value not UTF-8.
  convert IN.jsonl OUT.parquet [ROWS_PER_GROUP]
      IN's records as they are (every field a column, types inferred), zstd; for benchmarks.
"""

import json
import sys

try:
    import pyarrow as pa
    import pyarrow.parquet as pq
except ImportError:
    sys.stderr.write("pyarrow is missing: pip install pyarrow\n")
    sys.exit(3)


def write(args):
    src, out = args[0], args[1]
    opts = dict(zip(args[2::2], args[3::2]))
    rows_per_group = int(opts.get("--rows-per-group", "50"))
    compression = opts.get("--compression", "zstd")
    text_type = opts.get("--text-type", "string")
    records = [json.loads(line) for line in open(src, encoding="utf-8") if line.strip()]
    texts = [r.get("text") for r in records]
    langs = ["en" if i % 3 else "de" for i in range(len(records))]
    text_array = {
        "string": lambda: pa.array(texts, pa.string()),
        "large_string": lambda: pa.array(texts, pa.large_string()),
        "string_view": lambda: pa.array(texts, pa.string_view()),
        "dictionary": lambda: pa.array(texts, pa.string()).dictionary_encode(),
    }[text_type]()
    table = pa.table(
        {
            "id": pa.array([r.get("id") for r in records], pa.string()),
            "text": text_array,
            "lang": pa.array(langs, pa.string()).dictionary_encode(),
            "meta": pa.array(
                [
                    {"url": f"https://site{i % 4}.example/p/{i}", "words": len((t or "").split())}
                    for i, t in enumerate(texts)
                ],
                pa.struct([("url", pa.string()), ("words", pa.int32())]),
            ),
            "n": pa.array(range(len(records)), pa.int64()),
        }
    )
    table = table.replace_schema_metadata({"origin": "tests"})
    pq.write_table(table, out, row_group_size=rows_per_group, compression=compression)


def jsonable(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


def read(args):
    f = pq.ParquetFile(args[0])
    table = f.read()
    metadata = {
        k.decode(): v.decode("utf-8", "replace")
        for k, v in (f.metadata.metadata or {}).items()
        if k != b"ARROW:schema"
    }
    print(
        json.dumps(
            {
                "schema": str(table.schema.remove_metadata()),
                "metadata": metadata,
                "num_row_groups": f.metadata.num_row_groups,
                "rows": jsonable(table.to_pylist()),
            }
        )
    )


def same_schema(args):
    a = pq.read_schema(args[0])
    b = pq.read_schema(args[1])
    print(json.dumps(a.equals(b, check_metadata=True)))


def corrupt(args):
    src, out, group = args[0], args[1], int(args[2])
    name = args[3] if len(args) > 3 else "text"
    meta = pq.ParquetFile(src).metadata
    names = [meta.schema.column(i).path for i in range(meta.num_columns)]
    column = meta.row_group(group).column(names.index(name))
    start = column.data_page_offset
    if column.dictionary_page_offset is not None:
        start = min(start, column.dictionary_page_offset)
    data = bytearray(open(src, "rb").read())
    # Keep the first page header's first bytes, overwrite the rest of the chunk with junk.
    for i in range(start + 8, start + column.total_compressed_size):
        data[i] = (i * 131 + 7) % 251
    open(out, "wb").write(bytes(data))


def truncate(args):
    data = open(args[0], "rb").read()
    open(args[1], "wb").write(data[: len(data) // 2])


def binary_text(args):
    table = pa.table(
        {
            "id": ["a", "b", "c"],
            "text": pa.array([b"plain text", b"caf\xe9 latin-1", b"more text"], pa.binary()),
        }
    )
    pq.write_table(table, args[0])


def convert(args):
    import pyarrow.json as pj

    rows_per_group = int(args[2]) if len(args) > 2 else 10000
    table = pj.read_json(args[0])
    pq.write_table(table, args[1], row_group_size=rows_per_group, compression="zstd")


COMMANDS = {
    "convert": convert,
    "write": write,
    "read": read,
    "same-schema": same_schema,
    "corrupt": corrupt,
    "truncate": truncate,
    "binary-text": binary_text,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.stderr.write(__doc__)
        sys.exit(2)
    COMMANDS[sys.argv[1]](sys.argv[2:])
