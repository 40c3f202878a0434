//! The two network questions dpe compose asks the host itself: is this host port free (before
//! starting anything), and does this Jupyter answer yet (after). Both use std's sockets; the
//! readiness check speaks just enough HTTP/1.0 to read a status line.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Whether something already listens on `bind:port` (we cannot bind it ourselves).
pub fn port_in_use(bind: &str, port: u16) -> bool {
    let bind = bind.trim_start_matches('[').trim_end_matches(']');
    TcpListener::bind((bind, port)).is_err()
}

/// Whether `url` (plain `http://host:port/path`) answers with status 200.
pub fn answers_200(url: &str) -> bool {
    let Some((authority, path)) = split_http_url(url) else { return false };
    let Ok(mut addrs) = authority.to_socket_addrs() else { return false };
    let Some(addr) = addrs.next() else { return false };
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 64];
    let mut read = 0;
    while read < 12 {
        match stream.read(&mut head[read..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
    }
    let status = String::from_utf8_lossy(&head[..read]);
    status.starts_with("HTTP/1.") && status.get(9..12) == Some("200")
}

/// `http://host:port/path?q` → (`host:port`, `/path?q`); `None` for anything else.
fn split_http_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let authority = if authority.contains(':') { authority.to_string() } else { format!("{authority}:80") };
    Some((authority, path.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split() {
        assert_eq!(
            split_http_url("http://127.0.0.1:8888/api/status?token=x"),
            Some(("127.0.0.1:8888".into(), "/api/status?token=x".into()))
        );
        assert_eq!(split_http_url("http://localhost"), Some(("localhost:80".into(), "/".into())));
        assert_eq!(split_http_url("https://x"), None);
    }

    #[test]
    fn a_listening_port_is_in_use_and_answers() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(port_in_use("127.0.0.1", port));
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut buf = [0u8; 512];
            let _ = stream.read(&mut buf);
            stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").unwrap();
        });
        assert!(answers_200(&format!("http://127.0.0.1:{port}/api/status")));
        server.join().unwrap();
        assert!(!port_in_use("127.0.0.1", port));
        assert!(!answers_200(&format!("http://127.0.0.1:{port}/")));
    }
}
