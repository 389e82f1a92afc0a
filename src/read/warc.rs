//! WARC and WET: records framed by their headers (`Content-Length`), read from a plain file or
//! one gzip member at a time ([`WarcSource`]); what each record is to a run (a document, or
//! skipped and why: [`classify`]); and the document a record holds ([`document`]: id, URL, text).
//!
//! A record's bytes are the record as written: the version line and headers, the blank line, the
//! payload and the two CRLFs after it. Framing keeps them whole, so the kept output can copy them
//! unchanged; parsing reads the id, URL and text out of them.
//!
//! Damage: a record that cannot be framed (no `Content-Length`, a header block that does not end,
//! a payload shorter than its `Content-Length`, no CRLF CRLF after it) is a rejection at its byte
//! offset, and framing goes on at the next line starting with `WARC/` (plain files) or at the
//! next gzip member (gzip). A gzip member that does not decompress (corrupt, truncated, a bad
//! checksum) is one rejection at its offset; reading goes on at the next offset from which a
//! whole member decompresses (found by its magic bytes `1f 8b 08`; offsets that fail on the way
//! are part of the same damage and not reported again).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{self, Read};

use super::members::{GZIP_MAGIC, Inflated, Inflater, inflate_at, inflate_block};
use super::{Format, Frame, Location, Record, io_reason};
use crate::error::{InputFailure, Origin, RejectReason, Rejection};

/// The longest WARC header block read.
const MAX_HEADER: usize = 64 << 10;
/// How much is read from an input at a time.
const CHUNK: usize = 1 << 16;
/// How much of a gzipped input is read to inflate its members in parallel ([`inflate_block`]).
const BLOCK: usize = 4 << 20;

/// Bytes read from an input, kept from the current record or member on.
pub(super) struct Window {
    reader: Box<dyn Read + Send>,
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed.
    pos: usize,
    /// The input offset of `buf[0]`.
    base: u64,
    eof: bool,
}

impl Window {
    pub(super) fn new(reader: Box<dyn Read + Send>) -> Window {
        Window {
            reader,
            buf: Vec::new(),
            pos: 0,
            base: 0,
            eof: false,
        }
    }

    /// A window over bytes already in memory (a decompressed gzip member).
    fn of(bytes: Vec<u8>) -> Window {
        Window {
            reader: Box::new(io::empty()),
            buf: bytes,
            pos: 0,
            base: 0,
            eof: true,
        }
    }

    fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    fn available(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Reads until at least `n` bytes are available or the input ends; says whether they are.
    fn fill(&mut self, n: usize) -> io::Result<bool> {
        while self.buf.len() - self.pos < n && self.more()? {}
        Ok(self.buf.len() - self.pos >= n)
    }

    /// Reads one more chunk; false at the end of the input.
    fn more(&mut self) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 && self.pos >= self.buf.len() / 2 {
            self.buf.drain(..self.pos);
            self.base += self.pos as u64;
            self.pos = 0;
        }
        let len = self.buf.len();
        self.buf.resize(len + CHUNK, 0);
        let read = loop {
            match self.reader.read(&mut self.buf[len..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        let n = match read {
            Ok(n) => n,
            Err(e) => {
                self.buf.truncate(len);
                return Err(e);
            }
        };
        self.buf.truncate(len + n);
        self.eof = n == 0;
        Ok(n > 0)
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
    }

    /// Consumes `n` bytes without keeping them; false when the input ends first.
    fn skip(&mut self, mut n: u64) -> io::Result<bool> {
        while n > 0 {
            if !self.fill(1)? {
                return Ok(false);
            }
            let take = (self.available().len() as u64).min(n) as usize;
            self.consume(take);
            n -= take as u64;
        }
        Ok(true)
    }
}

/// The WARC record that is the whole of the gzip `member` (as [`Location`] finds it in a gzipped
/// WARC file): inflated and framed as reading framed it.
pub(super) fn record_of_member(member: &[u8]) -> io::Result<Vec<u8>> {
    thread_local! {
        // One per thread that reads records back: an exact check reads one member at a time,
        // and an inflater's scratch buffer is not zeroed again for each.
        static INFLATER: std::cell::RefCell<Inflater> = std::cell::RefCell::new(Inflater::new());
    }
    let invalid = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
    let inflated =
        INFLATER.with(|inflater| inflate_at(member, usize::MAX, &mut inflater.borrow_mut()));
    let out = match inflated {
        Inflated::Whole { out, .. } => out,
        Inflated::Bad(reason) => return Err(invalid(reason)),
        _ => return Err(invalid("truncated gzip member".to_string())),
    };
    match next_plain(&mut Window::of(out), usize::MAX)? {
        Framed::Record { bytes, .. } => Ok(bytes),
        _ => Err(invalid("the gzip member holds no whole record".to_string())),
    }
}

/// What plain framing found next.
enum Framed {
    Record { offset: u64, bytes: Vec<u8> },
    Rejected { offset: u64, reason: RejectReason },
    End,
}

fn malformed(reason: impl Into<String>) -> RejectReason {
    RejectReason::Malformed(reason.into())
}

/// The end of a header block that starts at `bytes[0]`: just past its blank line (CRLF CRLF, or
/// bare LF LF as some writers have it).
fn header_end(bytes: &[u8]) -> Option<usize> {
    memchr::memchr_iter(b'\n', bytes).find_map(|i| match bytes.get(i + 1..) {
        Some([b'\n', ..]) => Some(i + 2),
        Some([b'\r', b'\n', ..]) => Some(i + 3),
        _ => None,
    })
}

/// Frames the next record of an uncompressed WARC stream, or says why it cannot.
fn next_plain(window: &mut Window, max: usize) -> io::Result<Framed> {
    // Blank lines between records are tolerated.
    loop {
        if !window.fill(1)? {
            return Ok(Framed::End);
        }
        let blank = window
            .available()
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        if blank == 0 {
            break;
        }
        window.consume(blank);
    }
    let offset = window.offset();
    let head_len = loop {
        if let Some(end) =
            header_end(&window.available()[..window.available().len().min(MAX_HEADER)])
        {
            break end;
        }
        if window.available().len() >= MAX_HEADER {
            resync(window)?;
            return Ok(Framed::Rejected {
                offset,
                reason: malformed(format!("header block longer than {MAX_HEADER} bytes")),
            });
        }
        if !window.more()? {
            let n = window.available().len();
            window.consume(n);
            return Ok(Framed::Rejected {
                offset,
                reason: malformed("truncated record: the input ends inside its headers"),
            });
        }
    };
    let head = match Head::parse(&window.available()[..head_len]) {
        Ok(head) => head,
        Err(reason) => {
            resync(window)?;
            return Ok(Framed::Rejected { offset, reason });
        }
    };
    let Some(length) = head.content_length else {
        resync(window)?;
        return Ok(Framed::Rejected {
            offset,
            reason: malformed("no Content-Length"),
        });
    };
    let total = head_len as u64 + length + 4;
    if total > max as u64 {
        // Skipped without being held; the next record is found where this one says it ends.
        window.skip(head_len as u64 + length)?;
        if window.fill(4)? && window.available().starts_with(b"\r\n\r\n") {
            window.consume(4);
        }
        return Ok(Framed::Rejected {
            offset,
            reason: RejectReason::TooLarge { limit: max },
        });
    }
    let total = total as usize;
    if !window.fill(total - 4)? {
        let have = window.available().len().saturating_sub(head_len);
        window.consume(window.available().len());
        return Ok(Framed::Rejected {
            offset,
            reason: malformed(format!(
                "truncated record: payload of {have} bytes, Content-Length {length}"
            )),
        });
    }
    window.fill(total)?;
    if !window.available()[total - 4..].starts_with(b"\r\n\r\n") {
        window.consume(total - 4);
        resync(window)?;
        return Ok(Framed::Rejected {
            offset,
            reason: malformed("no CRLF CRLF after the payload (Content-Length does not match it)"),
        });
    }
    let bytes = window.available()[..total].to_vec();
    window.consume(total);
    Ok(Framed::Record { offset, bytes })
}

/// Consumes up to the next line that starts with `WARC/` (not counting one at the very start),
/// or to the end of the input.
fn resync(window: &mut Window) -> io::Result<()> {
    if window.fill(1)? {
        window.consume(1);
    }
    loop {
        if let Some(i) = memchr::memmem::find(window.available(), b"\nWARC/") {
            window.consume(i + 1);
            return Ok(());
        }
        let n = window.available().len().saturating_sub(5);
        window.consume(n);
        if !window.more()? {
            let n = window.available().len();
            window.consume(n);
            return Ok(());
        }
    }
}

/// A record's header block, as far as a run reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Head<'a> {
    /// Bytes of the version line, headers and blank line.
    pub len: usize,
    pub content_length: Option<u64>,
    pub warc_type: Option<&'a str>,
    pub record_id: Option<&'a str>,
    pub target_uri: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub identified_payload_type: Option<&'a str>,
}

impl<'a> Head<'a> {
    /// Parses a header block (`bytes` ends with its blank line).
    fn parse(bytes: &'a [u8]) -> Result<Head<'a>, RejectReason> {
        let text = std::str::from_utf8(bytes).map_err(|e| RejectReason::InvalidUtf8 {
            offset: e.valid_up_to(),
        })?;
        let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
        let version = lines.next().unwrap_or_default();
        if !version.starts_with("WARC/") {
            return Err(malformed("not a WARC record (no WARC/ version line)"));
        }
        let mut head = Head {
            len: bytes.len(),
            ..Head::default()
        };
        for line in lines {
            if line.is_empty() {
                break;
            }
            // A continuation line (SP or HT first) belongs to the header before it; none of the
            // headers read here is ever continued.
            if line.starts_with([' ', '\t']) {
                continue;
            }
            let Some((name, value)) = line.split_once(':') else {
                return Err(malformed(format!("bad header line {:?}", clip(line))));
            };
            let value = value.trim();
            let name = name.trim_end();
            if name.eq_ignore_ascii_case("Content-Length") {
                let length = value.parse().map_err(|_| {
                    malformed(format!("Content-Length {:?} is not a number", clip(value)))
                })?;
                head.content_length = Some(length);
            } else if name.eq_ignore_ascii_case("WARC-Type") {
                head.warc_type = Some(value);
            } else if name.eq_ignore_ascii_case("WARC-Record-ID") {
                head.record_id = Some(value);
            } else if name.eq_ignore_ascii_case("WARC-Target-URI") {
                head.target_uri = Some(value);
            } else if name.eq_ignore_ascii_case("Content-Type") {
                head.content_type = Some(value);
            } else if name.eq_ignore_ascii_case("WARC-Identified-Payload-Type") {
                head.identified_payload_type = Some(value);
            }
        }
        Ok(head)
    }
}

/// At most 60 characters of `text`, for messages.
fn clip(text: &str) -> &str {
    match text.char_indices().nth(60) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

/// What a well-framed record is to a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Kind {
    Document,
    /// Not a document; the reason it is counted under.
    Skipped(&'static str),
}

/// Whether a framed record is a document: a `conversion` record (WET), or a `response` record
/// whose payload is an HTTP response with an HTML body. Everything else is skipped, by type.
pub(super) fn classify(record: &[u8]) -> Result<Kind, RejectReason> {
    let end = header_end(record).ok_or_else(|| malformed("no blank line after the headers"))?;
    let head = Head::parse(&record[..end])?;
    let payload = payload(record, &head);
    Ok(
        match head.warc_type.map(str::to_ascii_lowercase).as_deref() {
            Some("conversion") => Kind::Document,
            Some("response") => match http_response(&head, payload)? {
                Some(http) if http.html => Kind::Document,
                Some(_) => Kind::Skipped("response (not HTML)"),
                None => Kind::Skipped("response (not HTTP)"),
            },
            Some("warcinfo") => Kind::Skipped("warcinfo"),
            Some("request") => Kind::Skipped("request"),
            Some("metadata") => Kind::Skipped("metadata"),
            Some("revisit") => Kind::Skipped("revisit"),
            Some("resource") => Kind::Skipped("resource"),
            Some("continuation") => Kind::Skipped("continuation"),
            Some(_) => Kind::Skipped("other type"),
            None => return Err(malformed("no WARC-Type")),
        },
    )
}

fn payload<'a>(record: &'a [u8], head: &Head<'_>) -> &'a [u8] {
    let length = head.content_length.unwrap_or(0) as usize;
    let end = (head.len + length).min(record.len());
    &record[head.len.min(end)..end]
}

/// The document a WARC record holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarcDocument<'a> {
    /// `WARC-Record-ID` as written (`<urn:uuid:…>`).
    pub id: &'a str,
    /// `WARC-Target-URI`, when the record has one.
    pub url: Option<&'a str>,
    /// A `conversion` record's payload, or the visible text of a `response` record's HTML.
    pub text: Cow<'a, str>,
}

/// The document of a WARC record (its bytes as framed: headers, payload, CRLF CRLF): a
/// `conversion` record's payload, which must be UTF-8 (a bad byte is a rejection at its offset in
/// the record), or a `response` record's HTML body as text ([`html_text`]).
pub fn document(record: &[u8]) -> Result<WarcDocument<'_>, RejectReason> {
    let end = header_end(record).ok_or_else(|| malformed("no blank line after the headers"))?;
    let head = Head::parse(&record[..end])?;
    let id = head
        .record_id
        .ok_or_else(|| malformed("no WARC-Record-ID"))?;
    let payload = payload(record, &head);
    let text =
        match head.warc_type.map(str::to_ascii_lowercase).as_deref() {
            Some("conversion") => Cow::Borrowed(std::str::from_utf8(payload).map_err(|e| {
                RejectReason::InvalidUtf8 {
                    offset: head.len + e.valid_up_to(),
                }
            })?),
            Some("response") => match http_response(&head, payload)? {
                Some(http) if http.html => Cow::Owned(http.text()?),
                _ => return Err(malformed("a response record without an HTML payload")),
            },
            other => {
                return Err(malformed(format!(
                    "a {} record is not a document",
                    other.unwrap_or("untyped")
                )));
            }
        };
    Ok(WarcDocument {
        id,
        url: head.target_uri,
        text,
    })
}

/// An HTTP response in a `response` record's payload.
struct HttpResponse<'a> {
    html: bool,
    charset: Option<String>,
    chunked: bool,
    encoding: Option<String>,
    body: &'a [u8],
}

/// The HTTP response in a `response` record, or `None` when its payload is not HTTP (a DNS
/// record, say).
fn http_response<'a>(
    head: &Head<'_>,
    payload: &'a [u8],
) -> Result<Option<HttpResponse<'a>>, RejectReason> {
    let http = head
        .content_type
        .is_some_and(|t| t.to_ascii_lowercase().starts_with("application/http"));
    if !http {
        return Ok(None);
    }
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut response = httparse::Response::new(&mut headers);
    let parsed = httparse::ParserConfig::default()
        .allow_spaces_after_header_name_in_responses(true)
        .allow_obsolete_multiline_headers_in_responses(true)
        .allow_multiple_spaces_in_response_status_delimiters(true)
        .ignore_invalid_headers_in_responses(true)
        .parse_response(&mut response, payload);
    let body_start = match parsed {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err(malformed("HTTP head is incomplete")),
        Err(e) => return Err(malformed(format!("bad HTTP head: {e}"))),
    };
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_ascii_lowercase())
    };
    let content_type = header("Content-Type");
    let mime = |t: &str| {
        let t = t
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        t == "text/html" || t == "application/xhtml+xml"
    };
    // Common Crawl's own identification first (as datatrove does), else the server's word.
    let html = match head.identified_payload_type {
        Some(identified) => mime(identified),
        None => content_type.as_deref().is_some_and(mime),
    };
    let charset = content_type.as_deref().and_then(charset_param);
    Ok(Some(HttpResponse {
        html,
        charset,
        chunked: header("Transfer-Encoding").is_some_and(|t| t.contains("chunked")),
        encoding: header("Content-Encoding").filter(|e| !e.is_empty() && e != "identity"),
        body: &payload[body_start..],
    }))
}

/// The `charset` parameter of a content type, lowercased.
fn charset_param(content_type: &str) -> Option<String> {
    let at = content_type.to_ascii_lowercase().find("charset=")?;
    let value = &content_type[at + "charset=".len()..];
    let value = value.trim_start().trim_start_matches(['"', '\'']);
    let end = value
        .find(|c: char| c == ';' || c == '"' || c == '\'' || c.is_whitespace())
        .unwrap_or(value.len());
    (end > 0).then(|| value[..end].to_ascii_lowercase())
}

impl HttpResponse<'_> {
    /// The body's visible text: de-chunked, decompressed, decoded by its charset, rendered.
    fn text(&self) -> Result<String, RejectReason> {
        let mut body = Cow::Borrowed(self.body);
        if self.chunked {
            body = Cow::Owned(dechunk(&body)?);
        }
        match self.encoding.as_deref() {
            None => {}
            Some("gzip" | "x-gzip") => {
                let mut out = Vec::new();
                flate2::read::MultiGzDecoder::new(&body[..])
                    .read_to_end(&mut out)
                    .map_err(|e| malformed(format!("gzip content encoding: {e}")))?;
                body = Cow::Owned(out);
            }
            Some("deflate") => {
                // Servers send deflate with (as specified) or without the zlib wrapper.
                let mut out = Vec::new();
                let zlib = flate2::read::ZlibDecoder::new(&body[..]).read_to_end(&mut out);
                if zlib.is_err() {
                    out.clear();
                    flate2::read::DeflateDecoder::new(&body[..])
                        .read_to_end(&mut out)
                        .map_err(|e| malformed(format!("deflate content encoding: {e}")))?;
                }
                body = Cow::Owned(out);
            }
            Some(other) => {
                return Err(malformed(format!(
                    "content encoding {:?} is not supported",
                    clip(other)
                )));
            }
        }
        let html = decode_charset(&body, self.charset.as_deref());
        html_text(&html)
    }
}

/// Undoes `Transfer-Encoding: chunked`.
fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, RejectReason> {
    let bad = || malformed("bad chunked transfer encoding");
    let mut out = Vec::with_capacity(body.len());
    loop {
        let line_end = memchr::memchr(b'\n', body).ok_or_else(bad)?;
        let line = std::str::from_utf8(&body[..line_end]).map_err(|_| bad())?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| bad())?;
        body = &body[line_end + 1..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = body.get(..size).ok_or_else(bad)?;
        out.extend_from_slice(chunk);
        body = &body[size..];
        body = body
            .strip_prefix(b"\r\n")
            .or_else(|| body.strip_prefix(b"\n"))
            .unwrap_or(body);
    }
}

/// The HTML decoded to text by its declared charset: the HTTP header's, else a `<meta charset>`
/// or `http-equiv` declaration in the first 1024 bytes, else UTF-8 (a byte-order mark wins over
/// both). Bytes that are not valid in the charset become U+FFFD.
fn decode_charset<'a>(body: &'a [u8], declared: Option<&str>) -> Cow<'a, str> {
    let label = declared
        .map(str::to_string)
        .or_else(|| meta_charset(&body[..body.len().min(1024)]));
    let encoding = label
        .and_then(|l| encoding_rs::Encoding::for_label(l.as_bytes()))
        .unwrap_or(encoding_rs::UTF_8);
    encoding.decode(body).0
}

/// The charset a `<meta>` tag declares among `head` (the first bytes of a page).
fn meta_charset(head: &[u8]) -> Option<String> {
    let lower = head.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = memchr::memmem::find(&lower[from..], b"<meta") {
        let start = from + at;
        let end = memchr::memchr(b'>', &lower[start..]).map_or(lower.len(), |e| start + e);
        let tag = String::from_utf8_lossy(&lower[start..end]);
        if let Some(at) = tag.find("charset") {
            let rest = tag[at + "charset".len()..].trim_start();
            if let Some(value) = rest.strip_prefix('=') {
                return charset_param(&format!("charset={}", value.trim_start()));
            }
        }
        from = end;
    }
    None
}

/// The visible text of an HTML page, with paragraph breaks kept: rendered by `html2text` as plain
/// text (no decoration marks, no wrapping, one table cell a line), trailing spaces trimmed and
/// runs of blank lines cut to one.
pub fn html_text(html: &str) -> Result<String, RejectReason> {
    let rendered = html2text::config::with_decorator(html2text::render::TrivialDecorator::new())
        .raw_mode(true)
        .allow_width_overflow()
        .string_from_read(html.as_bytes(), 1 << 20)
        .map_err(|e| malformed(format!("HTML could not be rendered: {e}")))?;
    let mut out = String::with_capacity(rendered.len());
    let mut blank = true;
    for line in rendered.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            if !blank {
                out.push('\n');
            }
            blank = true;
            continue;
        }
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(line);
        out.push('\n');
        blank = false;
    }
    while out.ends_with('\n') {
        out.pop();
    }
    Ok(out)
}

/// Skipped records by reason, as counted by framing.
pub(super) type Skips = BTreeMap<String, u64>;

/// The frames of one WARC or WET input.
pub(super) struct WarcSource {
    name: String,
    format: Format,
    /// The input's number when its records can be read back by location (a plain file).
    input: Option<u32>,
    raw: Window,
    gzip: bool,
    /// The decompressed gzip member being framed.
    member: Option<Member>,
    /// Records met so far (documents, skipped and rejected), for each record's number.
    records: u64,
    /// Documents framed so far, for a failure's count.
    documents: u64,
    skipped: Skips,
    /// Whether a record gets the gzip member it was read from ([`Record::stored`]).
    keep_members: bool,
    /// Made when the first member is read sequentially.
    inflater: Option<Inflater>,
    /// Members of the block read last, inflated in parallel, not framed yet.
    prepared: std::collections::VecDeque<Member>,
    /// Set after a member failed: offsets that fail while looking for the next whole member are
    /// not reported again.
    scanning: bool,
    /// The failure that ended the input, yielded once.
    failed: bool,
}

struct Member {
    window: Window,
    offset: u64,
    /// Its compressed length.
    len: usize,
    stored: Option<Vec<u8>>,
    first: bool,
}

/// How a gzip member read went.
enum MemberRead {
    Member(Member),
    /// Not a whole member at this offset (the reason), nothing consumed.
    Bad(String),
    /// A whole member, consumed, whose records would be larger than any kept.
    TooLarge,
    End,
}

impl WarcSource {
    pub(super) fn new(
        name: String,
        format: Format,
        raw: Window,
        gzip: bool,
        input: Option<u32>,
        keep_members: bool,
    ) -> WarcSource {
        WarcSource {
            name,
            format,
            input,
            raw,
            gzip,
            member: None,
            records: 0,
            documents: 0,
            skipped: Skips::new(),
            keep_members,
            inflater: None,
            prepared: std::collections::VecDeque::new(),
            scanning: false,
            failed: false,
        }
    }

    /// The skipped records counted so far, taken.
    pub(super) fn take_skipped(&mut self) -> Skips {
        std::mem::take(&mut self.skipped)
    }

    fn origin(&self, offset: u64) -> Origin {
        Origin {
            file: self.name.clone(),
            line: self.records,
            offset: Some(offset),
        }
    }

    fn failure(&mut self, e: &io::Error) -> Option<Frame> {
        if std::mem::replace(&mut self.failed, true) {
            return None;
        }
        Some(Frame::Failed(InputFailure {
            file: self.name.clone(),
            records_read: self.documents,
            reason: io_reason(e),
        }))
    }

    pub(super) fn next_frame(&mut self, max: usize) -> Option<Frame> {
        if self.failed {
            return None;
        }
        loop {
            let (framed, member_offset) = if self.gzip {
                let Some(member) = &mut self.member else {
                    match self.next_member(max) {
                        Ok(Some(frame)) => return Some(frame),
                        Ok(None) if self.member.is_some() => continue,
                        Ok(None) => return None,
                        Err(e) => return self.failure(&e),
                    }
                };
                // A member's window is in memory: reading it cannot fail.
                let framed = next_plain(&mut member.window, max).unwrap_or(Framed::End);
                if matches!(framed, Framed::End) {
                    self.member = None;
                    continue;
                }
                (framed, Some(member.offset))
            } else {
                match next_plain(&mut self.raw, max) {
                    Ok(framed) => (framed, None),
                    Err(e) => return self.failure(&e),
                }
            };
            self.records += 1;
            match framed {
                Framed::End => return None,
                Framed::Rejected { offset, reason } => {
                    let offset = member_offset.unwrap_or(offset);
                    return Some(Frame::Rejected(Rejection {
                        origin: self.origin(offset),
                        reason,
                    }));
                }
                Framed::Record { offset, bytes } => {
                    let offset = member_offset.unwrap_or(offset);
                    match classify(&bytes) {
                        Ok(Kind::Skipped(reason)) => {
                            *self.skipped.entry(reason.to_string()).or_default() += 1;
                            continue;
                        }
                        Err(reason) => {
                            return Some(Frame::Rejected(Rejection {
                                origin: self.origin(offset),
                                reason,
                            }));
                        }
                        Ok(Kind::Document) => {}
                    }
                    // The member, when this record is the whole of it; its place in the file
                    // then locates the record (read back by inflating it).
                    let (stored, location) = match &mut self.member {
                        Some(member) => {
                            let whole = member.first && member.window.available().is_empty();
                            member.first = false;
                            let location = self.input.filter(|_| whole).and_then(|input| {
                                Some(Location {
                                    input,
                                    offset: member.offset,
                                    len: u32::try_from(member.len).ok()?,
                                })
                            });
                            (member.stored.take().filter(|_| whole), location)
                        }
                        None => (
                            None,
                            self.input.map(|input| Location {
                                input,
                                offset,
                                len: bytes.len() as u32,
                            }),
                        ),
                    };
                    self.documents += 1;
                    return Some(Frame::Record(Record {
                        origin: self.origin(offset),
                        location,
                        bytes,
                        format: self.format,
                        stored,
                    }));
                }
            }
        }
    }

    /// Reads the next gzip member into `self.member`; a frame when it is bad (one rejection per
    /// damaged stretch); `None` at the end of the input.
    fn next_member(&mut self, max: usize) -> io::Result<Option<Frame>> {
        // In step with the members (not looking for one after damage): a block at a time.
        if self.prepared.is_empty() && !self.scanning {
            self.prepare_block(max)?;
        }
        if let Some(member) = self.prepared.pop_front() {
            self.member = Some(member);
            return Ok(None);
        }
        loop {
            let offset = self.raw.offset();
            match self.read_member(max)? {
                MemberRead::End => return Ok(None),
                MemberRead::Member(member) => {
                    self.scanning = false;
                    self.member = Some(member);
                    return Ok(None);
                }
                MemberRead::TooLarge => {
                    self.scanning = false;
                    self.records += 1;
                    return Ok(Some(Frame::Rejected(Rejection {
                        origin: self.origin(offset),
                        reason: RejectReason::TooLarge { limit: max },
                    })));
                }
                MemberRead::Bad(reason) => {
                    // Look for the next member from the byte after this one's start.
                    self.raw.consume(1);
                    self.skip_to_magic()?;
                    if std::mem::replace(&mut self.scanning, true) {
                        continue;
                    }
                    self.records += 1;
                    return Ok(Some(Frame::Rejected(Rejection {
                        origin: self.origin(offset),
                        reason: malformed(reason),
                    })));
                }
            }
        }
    }

    /// Consumes up to the next `1f 8b 08`, or to the end of the input.
    fn skip_to_magic(&mut self) -> io::Result<()> {
        loop {
            if let Some(i) = memchr::memmem::find(self.raw.available(), &GZIP_MAGIC) {
                self.raw.consume(i);
                return Ok(());
            }
            let keep = self.raw.available().len().min(GZIP_MAGIC.len() - 1);
            let n = self.raw.available().len() - keep;
            self.raw.consume(n);
            if !self.raw.more()? {
                let n = self.raw.available().len();
                self.raw.consume(n);
                return Ok(());
            }
        }
    }

    /// Decompresses the gzip member at the window's position (consumed only when whole and its
    /// checksum and length match), reading more of the input until it is whole. Its output
    /// beyond `max` (plus a header's room) is not kept: the member is then too large.
    fn read_member(&mut self, max: usize) -> io::Result<MemberRead> {
        if !self.raw.fill(1)? {
            return Ok(MemberRead::End);
        }
        let cap = max.saturating_add(MAX_HEADER + 4);
        let mut want = BLOCK;
        loop {
            let enough = self.raw.fill(want)?;
            let inflater = self.inflater.get_or_insert_with(Inflater::new);
            match inflate_at(self.raw.available(), cap, inflater) {
                Inflated::Whole { len, out } => return Ok(MemberRead::Member(self.take(len, out))),
                Inflated::TooLarge { len: Some(len) } => {
                    self.raw.consume(len);
                    return Ok(MemberRead::TooLarge);
                }
                Inflated::Incomplete | Inflated::TooLarge { len: None } if enough => {
                    want = want.saturating_mul(2);
                }
                Inflated::Incomplete | Inflated::TooLarge { len: None } => {
                    return Ok(MemberRead::Bad("truncated gzip member".to_string()));
                }
                Inflated::Bad(reason) => return Ok(MemberRead::Bad(reason)),
            }
        }
    }

    /// The member of `len` compressed bytes at the window's position, inflated to `out`,
    /// consumed.
    fn take(&mut self, len: usize, out: Vec<u8>) -> Member {
        let offset = self.raw.offset();
        let stored = self
            .keep_members
            .then(|| self.raw.available()[..len].to_vec());
        self.raw.consume(len);
        Member {
            window: Window::of(out),
            offset,
            len,
            stored,
            first: true,
        }
    }

    /// Inflates the whole members of the next block of the input in parallel
    /// ([`inflate_block`]) into `self.prepared`.
    fn prepare_block(&mut self, max: usize) -> io::Result<()> {
        self.raw.fill(BLOCK)?;
        let cap = max.saturating_add(MAX_HEADER + 4);
        let mut at = 0;
        for member in inflate_block(self.raw.available(), cap) {
            // The chain's members follow one another from the window's position.
            debug_assert_eq!(member.start, at);
            at = member.end();
            let prepared = self.take(member.len, member.out);
            self.prepared.push_back(prepared);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::{Framed, Kind, Window, classify, document, html_text, next_plain};
    use crate::error::RejectReason;

    fn warc_record(kind: &str, extra: &str, payload: &[u8]) -> Vec<u8> {
        let mut out = format!(
            "WARC/1.0\r\nWARC-Type: {kind}\r\nWARC-Record-ID: <urn:uuid:{kind}>\r\nWARC-Target-URI: http://x.org/{kind}\r\n{extra}Content-Length: {}\r\n\r\n",
            payload.len()
        )
        .into_bytes();
        out.extend_from_slice(payload);
        out.extend_from_slice(b"\r\n\r\n");
        out
    }

    fn http(headers: &str, body: &[u8]) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 200 OK\r\n{headers}\r\n").into_bytes();
        out.extend_from_slice(body);
        out
    }

    fn response(headers: &str, body: &[u8]) -> Vec<u8> {
        warc_record(
            "response",
            "Content-Type: application/http; msgtype=response\r\n",
            &http(headers, body),
        )
    }

    fn frames(bytes: &[u8]) -> Vec<Result<Vec<u8>, (u64, RejectReason)>> {
        let mut window = Window::new(Box::new(std::io::Cursor::new(bytes.to_vec())));
        let mut out = Vec::new();
        loop {
            match next_plain(&mut window, 1 << 20).unwrap() {
                Framed::End => return out,
                Framed::Record { bytes, .. } => out.push(Ok(bytes)),
                Framed::Rejected { offset, reason } => out.push(Err((offset, reason))),
            }
        }
    }

    #[test]
    fn issue12_plain_framing_resyncs_after_a_record_without_content_length() {
        let good = warc_record("conversion", "", b"hello world");
        let broken = b"WARC/1.0\r\nWARC-Type: conversion\r\n\r\npayload\r\n\r\n".to_vec();
        let lf_only = b"WARC/1.0\nWARC-Type: conversion\nContent-Length: 2\n\nhi\r\n\r\n".to_vec();
        let data = [good.clone(), broken.clone(), good.clone(), lf_only.clone()].concat();
        let got = frames(&data);
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(got[0].as_ref().unwrap(), &good);
        let (offset, reason) = got[1].as_ref().unwrap_err();
        assert_eq!(*offset, good.len() as u64);
        assert_eq!(reason.to_string(), "malformed record: no Content-Length");
        assert_eq!(got[2].as_ref().unwrap(), &good);
        assert_eq!(got[3].as_ref().unwrap(), &lf_only);
        // A payload shorter than its Content-Length at the end of the input.
        let got = frames(&good[..good.len() - 8]);
        assert!(
            matches!(&got[..], [Err((0, RejectReason::Malformed(m)))] if m.starts_with("truncated record"))
        );
    }

    #[test]
    fn issue12_records_are_documents_or_skipped_by_type() {
        let html = response("Content-Type: text/html\r\n", b"<p>Hi</p>");
        let png = response("Content-Type: image/png\r\n", b"\x89PNG");
        assert_eq!(classify(&html).unwrap(), Kind::Document);
        assert_eq!(
            classify(&png).unwrap(),
            Kind::Skipped("response (not HTML)")
        );
        assert_eq!(
            classify(&warc_record("conversion", "", b"t")).unwrap(),
            Kind::Document
        );
        for kind in ["warcinfo", "request", "metadata", "revisit", "resource"] {
            assert_eq!(
                classify(&warc_record(kind, "", b"x")).unwrap(),
                Kind::Skipped(kind)
            );
        }
        // Common Crawl's identified type wins over the server's.
        let identified = warc_record(
            "response",
            "Content-Type: application/http\r\nWARC-Identified-Payload-Type: text/html\r\n",
            &http("Content-Type: application/octet-stream\r\n", b"<p>x</p>"),
        );
        assert_eq!(classify(&identified).unwrap(), Kind::Document);
        let record = warc_record("conversion", "", b"caf\xc3\xa9");
        let doc = document(&record).unwrap();
        assert_eq!(
            (doc.id, doc.url, &*doc.text),
            (
                "<urn:uuid:conversion>",
                Some("http://x.org/conversion"),
                "café"
            )
        );
        let bad = warc_record("conversion", "", b"ok \xff");
        let header = bad.len() - 4 - 4;
        assert_eq!(
            document(&bad).unwrap_err(),
            RejectReason::InvalidUtf8 { offset: header + 3 }
        );
    }

    #[test]
    fn issue12_html_bodies_are_dechunked_decompressed_and_decoded_by_charset() {
        let page = "<html><head><script>hidden()</script><style>p{}</style></head><body><p>First paragraph.</p><p>Second <b>bold</b> one.</p></body></html>";
        let want = "First paragraph.\n\nSecond bold one.";
        let plain = response("Content-Type: text/html\r\n", page.as_bytes());
        assert_eq!(document(&plain).unwrap().text, want);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(page.as_bytes()).unwrap();
        let zipped = gz.finish().unwrap();
        let (a, b) = zipped.split_at(10);
        let mut chunked = format!("{:x}\r\n", a.len()).into_bytes();
        chunked.extend_from_slice(a);
        chunked.extend_from_slice(format!("\r\n{:x};ext=1\r\n", b.len()).as_bytes());
        chunked.extend_from_slice(b);
        chunked.extend_from_slice(b"\r\n0\r\n\r\n");
        let record = response(
            "Content-Type: text/html\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n",
            &chunked,
        );
        assert_eq!(document(&record).unwrap().text, want);
        // windows-1251 by the header, and by a <meta> tag.
        let (cyrillic, _, _) = encoding_rs::WINDOWS_1251.encode("<p>Привет мир</p>");
        let by_header = response(
            "Content-Type: text/html; charset=windows-1251\r\n",
            &cyrillic,
        );
        assert_eq!(document(&by_header).unwrap().text, "Привет мир");
        let with_meta = [b"<meta charset=\"windows-1251\">".as_slice(), &cyrillic].concat();
        let by_meta = response("Content-Type: text/html\r\n", &with_meta);
        assert_eq!(document(&by_meta).unwrap().text, "Привет мир");
        let brotli = response("Content-Type: text/html\r\nContent-Encoding: br\r\n", b"xx");
        assert!(
            document(&brotli)
                .unwrap_err()
                .to_string()
                .contains("\"br\" is not supported")
        );
        assert_eq!(
            html_text("<div>a</div>\n\n\n<p>b</p>   ").unwrap(),
            "a\n\nb"
        );
    }
}
