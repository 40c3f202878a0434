//! The two network questions dpe compose asks the host itself: is this host port free (before
//! starting anything), and does this Jupyter answer yet (after, through the SDK's probe).

use std::net::TcpListener;
use std::time::Duration;

/// Whether something already listens on `bind:port` (we cannot bind it ourselves).
pub fn port_in_use(bind: &str, port: u16) -> bool {
    let bind = bind.trim_start_matches('[').trim_end_matches(']');
    TcpListener::bind((bind, port)).is_err()
}

/// Whether `url` (plain `http://host:port/path`) answers with status 200: the SDK's probe,
/// patient with a server that is busy starting.
pub fn answers_200(url: &str) -> bool {
    dpe_plugin::sdk::http::answers_200(url, Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

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
