#!/usr/bin/env python3
"""WET and WARC files written and read by warcio, an independent implementation, for neardup's
integration tests (tests/integration/warc.rs) and the WET throughput benchmark.

  warc_fixtures.py write wet|warc [--gzip] IN.jsonl OUT   one document per JSON line
      {"id", "text", "url"?}: WET = a warcinfo record, then a conversion record per document;
      WARC = a warcinfo record, a non-HTML response, then per document a request, an HTML
      response (each paragraph of the text a <p>, with a <script> and a <style> in the head)
      and a metadata record. Record ids are <urn:uuid:…> derived from the document ids; prints
      one JSON line {"name", "id"} per document (its id in the JSON Lines and as a record).
  warc_fixtures.py index PATH                            one JSON line per record, as warcio
      reads it: offset and length (of its gzip member in a gzipped file), type, id, target URI,
      and the sha256 of its payload.

Needs `pip install warcio`.
"""
import hashlib
import html
import io
import json
import sys
import uuid

try:
    from warcio.archiveiterator import ArchiveIterator
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter
except ImportError:
    sys.stderr.write("warcio is missing: pip install warcio\n")
    sys.exit(3)

DATE = "2024-01-01T00:00:00Z"


def record_id(name, kind):
    return "<urn:uuid:%s>" % uuid.uuid5(uuid.NAMESPACE_URL, "%s/%s" % (kind, name))


def headers(name, kind, extra=None):
    out = {"WARC-Record-ID": record_id(name, kind), "WARC-Date": DATE}
    out.update(extra or {})
    return out


def page(text):
    paragraphs = "".join("<p>%s</p>\n" % html.escape(p) for p in text.split("\n\n"))
    return (
        "<!DOCTYPE html>\n<html><head><title>t</title>"
        "<script>var hidden = 'script text';</script><style>p { color: red }</style>"
        "</head>\n<body>\n%s</body></html>\n" % paragraphs
    ).encode("utf-8")


def write(kind, gzip, src, out):
    docs = [json.loads(line) for line in open(src, encoding="utf-8") if line.strip()]
    with open(out, "wb") as f:
        w = WARCWriter(f, gzip=gzip)
        info = w.create_warcinfo_record("fixture", {"software": "warcio fixture"})
        info.rec_headers.replace_header("WARC-Record-ID", record_id("info", "warcinfo"))
        info.rec_headers.replace_header("WARC-Date", DATE)
        w.write_record(info)
        if kind == "warc":
            http = StatusAndHeaders("200 OK", [("Content-Type", "image/png")], protocol="HTTP/1.1")
            w.write_record(w.create_warc_record(
                "http://example.com/logo.png", "response", payload=io.BytesIO(b"\x89PNG...."),
                http_headers=http, warc_headers_dict=headers("logo", "response")))
        for i, doc in enumerate(docs):
            name = str(doc.get("id", i))
            url = doc.get("url") or "http://example.com/%s" % name
            text = doc["text"]
            print(json.dumps({"name": name, "id": record_id(name, "conversion" if kind == "wet" else "response")}))
            if kind == "wet":
                w.write_record(w.create_warc_record(
                    url, "conversion", payload=io.BytesIO(text.encode("utf-8")),
                    warc_content_type="text/plain",
                    warc_headers_dict=headers(name, "conversion")))
                continue
            req = StatusAndHeaders("GET /%s HTTP/1.1" % name, [("Host", "example.com")],
                                   is_http_request=True)
            w.write_record(w.create_warc_record(
                url, "request", payload=io.BytesIO(b""), http_headers=req,
                warc_headers_dict=headers(name, "request")))
            body = page(text)
            http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")],
                                    protocol="HTTP/1.1")
            w.write_record(w.create_warc_record(
                url, "response", payload=io.BytesIO(body), http_headers=http,
                warc_headers_dict=headers(name, "response")))
            w.write_record(w.create_warc_record(
                url, "metadata", payload=io.BytesIO(b"fetchTimeMs: 12\r\n"),
                warc_content_type="application/warc-fields",
                warc_headers_dict=headers(name, "metadata")))


def index(path):
    with open(path, "rb") as f:
        it = ArchiveIterator(f)
        for rec in it:
            payload = rec.raw_stream.read()
            it.read_to_end(rec)
            print(json.dumps({
                "offset": it.get_record_offset(),
                "length": it.get_record_length(),
                "type": rec.rec_type,
                "id": rec.rec_headers.get_header("WARC-Record-ID"),
                "uri": rec.rec_headers.get_header("WARC-Target-URI"),
                "payload_sha256": hashlib.sha256(payload).hexdigest(),
            }))


def main(argv):
    if len(argv) >= 4 and argv[1] == "write":
        gzip = "--gzip" in argv
        args = [a for a in argv[2:] if a != "--gzip"]
        write(args[0], gzip, args[1], args[2])
    elif len(argv) == 3 and argv[1] == "index":
        index(argv[2])
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv)
