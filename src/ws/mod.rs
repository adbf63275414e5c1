//! The WebSocket transport: one task per socket reads frames, checks the
//! limits, and runs each request as its own task so slow writes do not hold
//! up cheap reads; a writer task drains the socket's queue, which the events
//! hub and the replies share.

pub mod actions;
pub mod hub;
pub mod presence;
pub mod protocol;

use crate::engine::accounts::SessionId;
use crate::engine::limits::TokenBucket;
use crate::engine::{now_ms, random_bytes, Caller, Engine, Error, Level};
use futures_util::{SinkExt, StreamExt};
use hub::{ClientHandle, Eviction, Hub, Outgoing, QUEUE};
use hyper_util::rt::TokioIo;
use presence::Presence;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;
use tracing::Instrument;

/// An upgraded connection.
pub type WebSocket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// Largest frame or message accepted (docs/protocol.md, "Limits").
pub const MAX_FRAME: usize = 64 * 1024;
/// Requests of one socket being worked on at once; further frames wait.
const IN_FLIGHT: usize = 32;

/// Most frames written before one flush: replies and events that queue up
/// while the socket is busy leave in one write, not one system call each.
const WRITE_BATCH: usize = 64;

/// How long a close frame may wait for a peer that does not read before the
/// connection is dropped without it.
const CLOSE_GRACE: Duration = Duration::from_secs(10);

/// Writes queued frames until the queue closes or a close frame is sent.
/// `closing` cuts in front of the queue: a socket evicted because its queue
/// is full would otherwise never get its close frame, and a peer that never
/// reads would hold the connection open.
async fn write_frames<S>(
    mut sink: S,
    mut rx: mpsc::Receiver<Outgoing>,
    closing: oneshot::Receiver<(u16, &'static str)>,
) where
    S: futures_util::Sink<Message> + Unpin,
{
    let close = tokio::select! {
        biased;
        Ok(close) = closing => Some(close),
        () = write_queue(&mut sink, &mut rx) => None,
    };
    if let Some((code, reason)) = close {
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        };
        let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(Message::Close(Some(frame)))).await;
    }
    let _ = tokio::time::timeout(CLOSE_GRACE, sink.close()).await;
}

/// Writes queued frames until the queue closes or a queued close frame is
/// sent.
async fn write_queue<S>(sink: &mut S, rx: &mut mpsc::Receiver<Outgoing>)
where
    S: futures_util::Sink<Message> + Unpin,
{
    'queue: while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        let mut fed = 0;
        while let Some(out) = next.take() {
            let result = match out {
                Outgoing::Text(text) => sink.feed(Message::Text(text)).await,
                Outgoing::Frames(frames) => feed_all(sink, &frames).await,
                Outgoing::Ping => sink.feed(Message::Ping(Default::default())).await,
                Outgoing::Close(code, reason) => {
                    let frame = CloseFrame {
                        code: CloseCode::from(code),
                        reason: reason.into(),
                    };
                    // `send` flushes what was fed before it too.
                    let _ = sink.send(Message::Close(Some(frame))).await;
                    break 'queue;
                }
            };
            if result.is_err() {
                break 'queue;
            }
            fed += 1;
            if fed < WRITE_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if sink.flush().await.is_err() {
            break;
        }
    }
}

/// Feeds shared frames in order; the bytes are not copied until the
/// WebSocket layer frames them.
async fn feed_all<S>(sink: &mut S, frames: &[Utf8Bytes]) -> Result<(), S::Error>
where
    S: futures_util::Sink<Message> + Unpin,
{
    for frame in frames {
        sink.feed(Message::Text(frame.clone())).await?;
    }
    Ok(())
}

/// Runs one request on its target document (`d`, else the socket's) in its
/// own span and returns the reply frame.
async fn answer(engine: &Engine, caller: &Caller, doc: &str, request: protocol::Request) -> String {
    let target = request.d.as_deref().unwrap_or(doc);
    let action = request.action.name();
    let span = crate::observe::ws_request_span(action, target);
    let timer = crate::observe::Timer::start();
    let result = match crate::engine::documents::validate_doc_id(target) {
        Ok(()) => {
            actions::dispatch(engine, caller, target, request.action)
                .instrument(span.clone())
                .await
        }
        Err(_) => Err(Error::NoSuchDocument(target.to_string())),
    };
    metrics::histogram!(crate::observe::names::WS_REQUEST_SECONDS, "action" => action)
        .record(timer.seconds());
    let outcome = result.as_ref().err().map_or("ok", Error::code);
    span.in_scope(|| tracing::debug!(outcome, latency_ms = timer.seconds() * 1000.0, "ws request"));
    match result {
        Ok(value) => protocol::reply(&request.token, &value),
        Err(e) => protocol::reply_error(&request.token, &e),
    }
}

/// What the operator sets for every socket.
#[derive(Debug, Clone, Copy)]
pub struct SocketPolicy {
    /// The server pings this often; a peer silent for two intervals is gone
    /// (a half-open connection) and is dropped.
    pub ping: Duration,
    /// Requests a second a socket may send, with bursts of twice as many;
    /// more get `rate_limited`.
    pub requests_per_s: u32,
}

/// The session a socket was opened with: a logout finds the socket by
/// `id`, and the socket closes by itself at `expires_at`.
pub struct SocketSession {
    pub id: SessionId,
    /// Milliseconds since the epoch.
    pub expires_at: i64,
}

/// Serves one upgraded socket until it closes. `keep` is held for the
/// socket's lifetime (the connection slot that counts against the cap).
#[allow(clippy::too_many_arguments)]
pub async fn serve_socket<K: Send + 'static>(
    engine: Engine,
    hub: Arc<Hub>,
    socket: WebSocket,
    doc: String,
    caller: Caller,
    session: Option<SocketSession>,
    level: Level,
    presence: Presence,
    policy: SocketPolicy,
    keep: K,
) {
    let ping = policy.ping;
    let client_id = hex::encode(random_bytes::<8>());
    tracing::Span::current().record("id", client_id.as_str());
    let (sink, mut stream) = socket.split();
    let (tx, rx) = mpsc::channel::<Outgoing>(QUEUE);
    let evict = Arc::new(Eviction::default());
    // Re-read: the permission may have changed during the upgrade.
    let level = engine.effective_level(&doc, caller.user()).unwrap_or(level);
    hub.join(
        &doc,
        &client_id,
        ClientHandle {
            user: caller.user().cloned(),
            session: session.as_ref().map(|s| s.id.clone()),
            level,
            presence,
            tx: tx.clone(),
            evict: evict.clone(),
        },
    );
    // A logout that ran before the join could not see this socket; the
    // session it deleted is gone by now, so the socket sees that instead.
    if let Some(s) = &session {
        if !engine.session_is_live(&s.id).unwrap_or(false) {
            evict.evict("logged out");
        }
    }
    let session_ends = async {
        match &session {
            Some(s) => {
                let left = u64::try_from(s.expires_at - now_ms()).unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(left)).await
            }
            None => std::future::pending().await,
        }
    };
    let mut session_ends = std::pin::pin!(session_ends);
    tracing::debug!("socket joined");

    let (close_tx, closing) = oneshot::channel();
    let mut close_tx = Some(close_tx);
    let mut close = |code: u16, reason: &'static str| {
        if let Some(close_tx) = close_tx.take() {
            let _ = close_tx.send((code, reason));
        }
    };
    let writer = tokio::spawn(write_frames(sink, rx, closing));

    let rate = f64::from(policy.requests_per_s);
    let mut bucket = TokenBucket::new(rate, 2.0 * rate);
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut pings = tokio::time::interval_at(tokio::time::Instant::now() + ping, ping);
    let mut last_heard = Instant::now();
    loop {
        let frame = tokio::select! {
            frame = stream.next() => frame,
            _ = pings.tick() => {
                if last_heard.elapsed() > ping * 2 {
                    tracing::debug!("socket silent; dropping it");
                    break;
                }
                let _ = tx.try_send(Outgoing::Ping);
                continue;
            }
            reason = evict.evicted() => {
                close(1008, reason);
                break;
            }
            _ = &mut session_ends => {
                close(1008, "session expired");
                break;
            }
        };
        let message = match frame {
            None => break,
            Some(Ok(m)) => {
                last_heard = Instant::now();
                m
            }
            Some(Err(e)) => {
                if let WsError::Capacity(CapacityError::MessageTooLong { .. }) = e {
                    let _ = tx.send(Outgoing::Close(1009, "frame too large")).await;
                }
                tracing::debug!(error = %e, "socket read failed");
                break;
            }
        };
        let text = match &message {
            Message::Text(text) => Some(text.as_str()),
            Message::Binary(_) => None,
            Message::Close(_) => break,
            // Pings are answered by the library.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
        };
        // Every data frame pays before it is read, malformed ones included,
        // so a flood of garbage costs the sender its budget, not the server.
        if !bucket.take() {
            crate::observe::refused("ws_rate_limit");
            let frame = match text.and_then(protocol::token_of) {
                Some(token) => protocol::reply_error(&token, &Error::RateLimited),
                None => protocol::frame_error(&Error::RateLimited),
            };
            let _ = tx.send(Outgoing::Text(frame.into())).await;
            continue;
        }
        let Some(text) = text else {
            let error = Error::bad("binary frames are not supported");
            let _ = tx
                .send(Outgoing::Text(protocol::frame_error(&error).into()))
                .await;
            continue;
        };
        let request = match protocol::parse(text) {
            Ok(r) => r,
            Err(bad) => {
                let error = Error::BadRequest(bad.message);
                let frame = match bad.token {
                    Some(token) => protocol::reply_error(&token, &error),
                    None => protocol::frame_error(&error),
                };
                let _ = tx.send(Outgoing::Text(frame.into())).await;
                continue;
            }
        };
        // Reads answer at once from storage: they are served here, in
        // order, without a task of their own. Writes wait for a flush, so
        // each runs in its own task while the socket reads on.
        if request.action.reads_only() {
            let frame = answer(&engine, &caller, &doc, request).await;
            if tx.send(Outgoing::Text(frame.into())).await.is_err() {
                break;
            }
            continue;
        }
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            break;
        };
        let (engine, caller, doc, tx) = (engine.clone(), caller.clone(), doc.clone(), tx.clone());
        tokio::spawn(
            async move {
                let frame = answer(&engine, &caller, &doc, request).await;
                let _ = tx.send(Outgoing::Text(frame.into())).await;
                drop(permit);
            }
            .in_current_span(),
        );
    }
    hub.leave(&doc, &client_id);
    drop(tx);
    // The writer ends once in-flight replies are written and every sender
    // (the hub's and the request tasks') is gone. Meanwhile what the peer
    // still sends (pongs, its answering close frame) is read and dropped: a
    // connection closed with unread input is reset, and the reset would
    // discard our close frame before the peer reads it.
    let drain = async { while let Some(Ok(_)) = stream.next().await {} };
    let _ = tokio::time::timeout(2 * CLOSE_GRACE, async { tokio::join!(drain, writer) }).await;
    drop(keep);
    tracing::debug!("socket left");
}
