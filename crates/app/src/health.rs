//! The containers' healthchecks: `kepatuhan-api healthcheck` and `kepatuhan-worker healthcheck`
//! ask their own process over loopback, with one HTTP/1.0 request on a plain socket (the image
//! has no curl, and a probe needs no HTTP client library).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// GETs `path` from the process listening on `addr` (on this machine when it listens on every
/// address) within three seconds; `Ok` when it answers 2xx, otherwise what went wrong.
///
/// # Errors
/// The address and what it answered, or why it did not.
pub async fn probe(mut addr: SocketAddr, path: &str) -> Result<(), String> {
    if addr.ip().is_unspecified() {
        addr.set_ip(Ipv4Addr::LOCALHOST.into());
    }
    let ask = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream
            .write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await?;
        let mut head = vec![0; 64];
        let n = stream.read(&mut head).await?;
        head.truncate(n);
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&head).into_owned())
    };
    let head = tokio::time::timeout(Duration::from_secs(3), ask)
        .await
        .map_err(|_| format!("http://{addr}{path}: no answer within 3 s"))?
        .map_err(|e| format!("http://{addr}{path}: {e}"))?;
    let status = head.split_whitespace().nth(1).unwrap_or_default();
    if status.starts_with('2') {
        Ok(())
    } else {
        Err(format!(
            "http://{addr}{path}: {}",
            head.lines().next().unwrap_or("no answer")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn serve_once(answer: &'static str) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0; 256];
            let _ = s.read(&mut buf).await;
            s.write_all(answer.as_bytes()).await.unwrap();
        });
        addr
    }

    #[tokio::test]
    async fn a_2xx_is_healthy_anything_else_is_not() {
        let ok = serve_once("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nOK").await;
        assert_eq!(probe(ok, "/health").await, Ok(()));
        let down = serve_once("HTTP/1.1 503 Service Unavailable\r\n\r\n").await;
        let err = probe(down, "/health/ready").await.unwrap_err();
        assert!(err.contains("503"), "{err}");
        let nobody = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        assert!(probe(nobody, "/health").await.is_err());
    }
}
