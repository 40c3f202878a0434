//! The readiness probe every plugin uses: a minimal HTTP/1.0 GET over std's TcpStream, with a
//! timeout on connecting, sending and every read, so a server that accepts and never answers
//! cannot hang a start. Plugins poll it until a status endpoint answers 200 (`dpe jupyter
//! start`, `dpe compose up`) or read a body once (`dpe jupyter list`'s last activity). No HTTP
//! client crate is needed for one request line.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The status code of `GET url` (an `http://host:port/path` URL), or `None` when nothing
/// answers yet.
pub fn status(url: &str, timeout: Duration) -> Option<u16> {
    let mut stream = request(url, timeout)?;
    let mut head = [0u8; 32];
    let mut filled = 0;
    while filled < 12 {
        let n = stream.read(&mut head[filled..]).ok()?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    status_of(std::str::from_utf8(&head[..filled]).ok()?)
}

/// The status code and body of `GET url`, or `None` when nothing answers within `timeout`
/// (each of connecting, sending and every read) or the answer is not HTTP. The body is read
/// to the end, which HTTP/1.0 marks by closing the connection; at most `limit` bytes are kept.
pub fn get(url: &str, timeout: Duration, limit: usize) -> Option<(u16, String)> {
    let stream = request(url, timeout)?;
    let mut bytes = Vec::new();
    stream.take(limit as u64).read_to_end(&mut bytes).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let (head, body) = text.split_once("\r\n\r\n")?;
    Some((status_of(head)?, body.to_string()))
}

/// Whether `url` answers `200` within `timeout`.
pub fn answers_200(url: &str, timeout: Duration) -> bool {
    status(url, timeout) == Some(200)
}

/// Connects to the URL's host and sends `GET path`.
fn request(url: &str, timeout: Duration) -> Option<TcpStream> {
    let (authority, path) = split(url)?;
    let address: SocketAddr = authority.to_socket_addrs().ok()?.next()?;
    let mut stream = TcpStream::connect_timeout(&address, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    Some(stream)
}

/// `http://host[:port]/path?q` → (`host:port`, `/path?q`), port 80 when none is named (an IPv6
/// host is bracketed, so only a colon after its `]` names a port); `None` for anything else.
fn split(url: &str) -> Option<(String, &str)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let host_end = authority.rfind(']').map_or(0, |i| i + 1);
    let authority = if authority[host_end..].contains(':') { authority.to_string() } else { format!("{authority}:80") };
    Some((authority, path))
}

/// The code of a status line (`HTTP/1.1 200 OK`); `None` for anything that is not HTTP.
fn status_of(head: &str) -> Option<u16> {
    let mut words = head.split_whitespace();
    words.next().filter(|version| version.starts_with("HTTP/"))?;
    words.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// The copies this replaced drifted: jupyter's could not reach a URL without a port, and
    /// compose's took the colons of an IPv6 host for one.
    #[test]
    fn urls_split_with_and_without_a_port() {
        assert_eq!(
            split("http://127.0.0.1:8888/api/status?token=x"),
            Some(("127.0.0.1:8888".into(), "/api/status?token=x"))
        );
        assert_eq!(split("http://localhost"), Some(("localhost:80".into(), "/")));
        assert_eq!(split("http://[::1]/lab"), Some(("[::1]:80".into(), "/lab")));
        assert_eq!(split("http://[::1]:8890/lab"), Some(("[::1]:8890".into(), "/lab")));
        assert_eq!(split("https://x"), None);
        assert_eq!(status_of("HTTP/1.1 200 OK"), Some(200));
        assert_eq!(status_of("SSH-2.0-OpenSSH 200"), None);
    }

    #[test]
    fn reads_the_status_of_a_real_server_and_none_when_closed() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 512];
            let n = conn.read(&mut buf).unwrap();
            assert!(String::from_utf8_lossy(&buf[..n]).starts_with("GET /p/api/status?token=t HTTP/1.0\r\n"));
            conn.write_all(b"HTTP/1.1 403 Forbidden\r\n\r\n").unwrap();
        });
        let url = format!("http://127.0.0.1:{port}/p/api/status?token=t");
        assert_eq!(status(&url, Duration::from_secs(2)), Some(403));
        server.join().unwrap();
        assert_eq!(status(&url, Duration::from_millis(200)), None);
    }

    /// The body comes whole; a server that accepts and never answers ends in `None` once the
    /// timeout passes (the server holds the connection longer), not in a hang.
    #[test]
    fn gets_a_body_and_gives_up_on_a_silent_server() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            for answer in [&b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"kernels\": 1}"[..], b""] {
                let (mut conn, _) = listener.accept().unwrap();
                let mut buf = [0u8; 512];
                let _ = conn.read(&mut buf).unwrap();
                if answer.is_empty() {
                    // Silent: hold the connection open past the client's timeout.
                    std::thread::sleep(Duration::from_millis(600));
                } else {
                    conn.write_all(answer).unwrap();
                }
            }
        });
        let url = format!("http://127.0.0.1:{port}/p/api/status?token=t");
        assert_eq!(get(&url, Duration::from_secs(2), 1024), Some((200, "{\"kernels\": 1}".to_string())));
        assert_eq!(get(&url, Duration::from_millis(200), 1024), None);
        server.join().unwrap();
    }
}
