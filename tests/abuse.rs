//! The public edge under attack, against a real server on port 0: what anyone on the internet
//! can send to `/twilio/stream` and to the HTTP listener itself (docs/SECURITY.md). Each test
//! reproduces an attack that hurt the server before the limits existed.

#[allow(dead_code)]
mod common;

use std::time::{Duration, Instant};

use common::{Backend, TestApp, start_app};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

async fn app() -> TestApp {
    start_app(Backend::Sqlite, |config| {
        config.connections.header_read_timeout = Duration::from_secs(1);
    })
    .await
}

fn stream_url(app: &TestApp) -> String {
    format!("{}/twilio/stream", app.base.replacen("http://", "ws://", 1))
}

/// A client-side config that lets this test send what a browser or Twilio never would.
fn unbounded() -> WebSocketConfig {
    WebSocketConfig::default().max_message_size(None).max_frame_size(None)
}

/// Whether the server closes the stream (or drops it) within `within`.
async fn closed_within<S>(socket: &mut S, within: Duration) -> bool
where
    S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    tokio::time::timeout(within, async {
        loop {
            match socket.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return true,
                Some(Ok(_)) => {}
            }
        }
    })
    .await
    .unwrap_or(false)
}

/// Four clients each sending two 12 MB `connected` messages before any `start` took the
/// server from 22 MB to 654 MB of memory (tungstenite allows 64 MiB messages, and every
/// message before `start` became a JSON DOM). Now a message over 64 KiB closes the socket as
/// its header arrives, and memory stays flat.
#[tokio::test]
async fn oversized_stream_messages_are_refused_without_memory_growth() {
    let app = app().await;
    let before = callcenter::process::resident_kib().unwrap_or(0);
    let big = format!(r#"{{"event":"connected","protocol":"Call","version":"{}"}}"#, "x".repeat(12 * 1024 * 1024));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let url = stream_url(&app);
        let big = big.clone();
        clients.push(tokio::spawn(async move {
            let (mut socket, _) =
                tokio_tungstenite::connect_async_with_config(url, Some(unbounded()), false).await.expect("upgrade");
            for _ in 0..2 {
                // The server may close mid-send: that is the point.
                if socket.send(Message::text(big.clone())).await.is_err() {
                    break;
                }
            }
            closed_within(&mut socket, Duration::from_secs(10)).await
        }));
    }
    for client in clients {
        assert!(client.await.unwrap(), "the server kept a stream that sent 12 MB messages");
    }
    let after = callcenter::process::resident_kib().unwrap_or(0);
    // The clients' own 12 MB strings live in this process too; the server kept none of it.
    let grown_mib = after.saturating_sub(before) / 1024;
    println!("resident memory: {} MiB before, {} MiB after the attack", before / 1024, after / 1024);
    assert!(grown_mib < 100, "resident memory grew by {grown_mib} MiB");
    assert_eq!(app.client.get(format!("{}/healthz", app.base)).send().await.unwrap().status(), 200);
}

/// Garbage, media before `start`, too many messages before it, or no `start` at all: the
/// stream is closed, and never reaches a call.
#[tokio::test]
async fn streams_that_do_not_start_properly_are_closed() {
    let app = app().await;
    let openers: [&[&str]; 4] = [
        &["this is not json"],
        &[r#"{"event":"media","media":{"track":"inbound","chunk":"1","timestamp":"0","payload":"AAAA"}}"#],
        &[r#"{"event":"connected"}"#; 6],
        &[],
    ];
    for messages in openers {
        let started = Instant::now();
        let (mut socket, _) = tokio_tungstenite::connect_async(stream_url(&app)).await.expect("upgrade");
        for m in messages {
            if socket.send(Message::text(*m)).await.is_err() {
                break;
            }
        }
        assert!(closed_within(&mut socket, Duration::from_secs(8)).await, "{messages:?} kept open");
        if messages.is_empty() {
            let waited = started.elapsed();
            assert!(waited >= Duration::from_secs(4), "closed after {waited:?}: the start timeout is 5 s");
        }
    }
}

/// Opens a media stream from the local address `from` (any 127.x.y.z is this machine).
async fn stream_from(
    app: &TestApp,
    from: [u8; 4],
) -> Result<tokio_tungstenite::WebSocketStream<TcpStream>, tokio_tungstenite::tungstenite::Error> {
    let server: std::net::SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(std::net::SocketAddr::from((from, 0))).unwrap();
    let tcp = socket.connect(server).await.unwrap();
    tokio_tungstenite::client_async(stream_url(app), tcp).await.map(|(ws, _)| ws)
}

fn refused_503<T>(result: Result<T, tokio_tungstenite::tungstenite::Error>) -> bool {
    matches!(result, Err(tokio_tungstenite::tungstenite::Error::Http(response)) if response.status() == 503)
}

/// Streams that never send `start` are capped, per peer address and in all: past the cap an
/// upgrade is refused with 503 before any socket is kept.
#[tokio::test]
async fn streams_waiting_for_their_start_are_capped() {
    use callcenter::session::runtime::{UNADMITTED_STREAMS, UNADMITTED_STREAMS_PER_PEER};
    let app = app().await;
    let mut waiting = Vec::new();
    for _ in 0..UNADMITTED_STREAMS_PER_PEER {
        waiting.push(stream_from(&app, [127, 0, 0, 1]).await.expect("upgrade"));
    }
    assert!(refused_503(stream_from(&app, [127, 0, 0, 1]).await), "one peer past its cap");
    // Other peers fill the rest, then nobody gets in.
    let peers = UNADMITTED_STREAMS / UNADMITTED_STREAMS_PER_PEER;
    for peer in 2..=peers as u8 {
        for _ in 0..UNADMITTED_STREAMS_PER_PEER {
            waiting.push(stream_from(&app, [127, 0, 0, peer]).await.expect("upgrade"));
        }
    }
    assert!(refused_503(stream_from(&app, [127, 0, 0, 200]).await), "past the cap in all");
    drop(waiting);
    // Their places come back as the server notices the closes.
    common::eventually(Duration::from_secs(10), "a free place for a stream", || async {
        stream_from(&app, [127, 0, 0, 1]).await.ok().map(|_| ())
    })
    .await;
}

/// Slowloris: a client that trickles a request's headers (or sends none) is cut off by the
/// header-read timeout (1 s here, 10 s by default), and the server answers others meanwhile.
#[tokio::test]
async fn slow_and_idle_connections_are_cut_off() {
    let app = app().await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut idle = Vec::new();
    for _ in 0..500 {
        idle.push(TcpStream::connect(&addr).await.expect("connect"));
    }
    let mut slow = TcpStream::connect(&addr).await.expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let started = Instant::now();
    let r = app.client.get(format!("{}/healthz", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "/healthz waited {:?} behind 500 idle sockets",
        started.elapsed()
    );
    // One more header line a little later does not reset the clock.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let _ = slow.write_all(b"X-Slow: 1\r\n").await;
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match slow.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                // hyper answers 408 before it closes
                Ok(_) => {}
            }
        }
    })
    .await
    .unwrap_or(false);
    assert!(closed, "a connection trickling its headers was kept");
    for mut socket in idle.drain(..5) {
        let ended = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buf)).await;
        // Closed (EOF or reset), possibly after a 408; only a read still waiting means kept.
        assert!(ended.is_ok(), "an idle socket was kept: {ended:?}");
    }
}
