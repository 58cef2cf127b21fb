//! The upstream: answers 200 to everything and remembers, byte for byte, what it got:
//! the request line, every header as sent (duplicates and spellings kept) and the body.
//! Heads are parsed with httparse (hyper's parser), bodies by their length or chunks.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request as it reached the upstream.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub target: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Seen {
    /// The values of a header, by name in any case, in order.
    pub fn header(&self, name: &str) -> impl Iterator<Item = &[u8]> {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    pub fn header_text(&self, name: &str) -> Option<String> {
        self.header(name)
            .next()
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }
}

pub type Log = Arc<Mutex<Vec<Seen>>>;

/// Starts the upstream on a free loopback port.
pub async fn start() -> (SocketAddr, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let log: Log = Arc::default();
    let record = Arc::clone(&log);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream, Arc::clone(&record)));
        }
    });
    (address, log)
}

async fn serve(mut stream: TcpStream, log: Log) {
    let mut buffer: Vec<u8> = Vec::new();
    loop {
        let Some((seen, used, close)) = next_request(&mut stream, &mut buffer).await else {
            return;
        };
        buffer.drain(..used);
        log.lock().unwrap().push(seen);
        let answer: &[u8] = if close {
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
        } else {
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
        };
        if stream.write_all(answer).await.is_err() || close {
            return;
        }
    }
}

/// Reads until one whole request is in `buffer`: the request, the bytes it took, and
/// whether the connection closes after it.
async fn next_request(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<(Seen, usize, bool)> {
    loop {
        if let Some(done) = parse(buffer) {
            return Some(done);
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}

/// `None`: more bytes are needed. Bytes that are no request are remembered too (an
/// empty method, the first line as the target), and end the connection.
fn parse(buffer: &[u8]) -> Option<(Seen, usize, bool)> {
    let unparsable = || {
        let line = buffer.split(|&b| b == b'\n').next().unwrap_or_default();
        let seen = Seen {
            method: String::new(),
            target: line.to_vec(),
            headers: Vec::new(),
            body: Vec::new(),
        };
        Some((seen, buffer.len(), true))
    };
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut request = httparse::Request::new(&mut headers);
    let head = match request.parse(buffer) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return None,
        Err(_) => return unparsable(),
    };
    let seen_headers: Vec<(String, Vec<u8>)> = request
        .headers
        .iter()
        .map(|h| (h.name.to_owned(), h.value.to_vec()))
        .collect();
    let value = |name: &str| {
        seen_headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).to_ascii_lowercase())
    };
    let close = value("connection").is_some_and(|v| v.contains("close"));
    let chunked = value("transfer-encoding").is_some_and(|v| v.contains("chunked"));
    let (body, used) = if chunked {
        let mut body = Vec::new();
        let mut at = head;
        loop {
            let (start, size) = match httparse::parse_chunk_size(buffer.get(at..)?) {
                Ok(httparse::Status::Complete(found)) => found,
                Ok(httparse::Status::Partial) => return None,
                Err(_) => return unparsable(),
            };
            let size = usize::try_from(size).ok()?;
            let data = at + start;
            if size == 0 {
                // The last chunk, then (no trailers from these gateways) a blank line.
                let end = data + 2;
                if buffer.len() < end {
                    return None;
                }
                break (body, end);
            }
            let end = data + size + 2;
            body.extend_from_slice(buffer.get(data..data + size)?);
            if buffer.len() < end {
                return None;
            }
            at = end;
        }
    } else {
        let length = value("content-length")
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        let end = head + length;
        (buffer.get(head..end)?.to_vec(), end)
    };
    let seen = Seen {
        method: request.method.unwrap_or_default().to_owned(),
        target: request.path.unwrap_or_default().as_bytes().to_vec(),
        headers: seen_headers,
        body,
    };
    Some((seen, used, close))
}
