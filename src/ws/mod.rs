//! The WebSocket transport: one task per socket reads frames, checks the
//! limits, and runs each request as its own task so slow writes do not hold
//! up cheap reads; a writer task drains the socket's queue, which the events
//! hub and the replies share.

pub mod actions;
pub mod protocol;

use crate::engine::events::{ClientHandle, Outgoing, QUEUE};
use crate::engine::limits::TokenBucket;
use crate::engine::{random_bytes, Caller, Engine, Error, Level};
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use tokio::sync::{mpsc, Notify, Semaphore};
use warp::ws::{Message, WebSocket};

/// Largest frame or message accepted (SPEC section 4).
pub const MAX_FRAME: usize = 64 * 1024;
/// Requests of one socket being worked on at once; further frames wait.
const IN_FLIGHT: usize = 32;

/// Serves one upgraded socket until it closes. `keep` is held for the
/// socket's lifetime (the connection slot that counts against the cap).
pub async fn serve_socket<K: Send + 'static>(
    engine: Engine,
    socket: WebSocket,
    doc: String,
    caller: Caller,
    level: Level,
    keep: K,
) {
    let client_id = hex::encode(random_bytes::<8>());
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Outgoing>(QUEUE);
    let kick = Arc::new(Notify::new());
    engine.hub().join(
        &doc,
        &client_id,
        ClientHandle {
            user: caller.user().cloned(),
            level,
            tx: tx.clone(),
            kick: kick.clone(),
        },
    );
    tracing::debug!(doc = %doc, client = %client_id, "socket joined");

    let writer = tokio::spawn(async move {
        while let Some(out) = rx.recv().await {
            let sent = match out {
                Outgoing::Text(text) => sink.send(Message::text(text)).await,
                Outgoing::Close(code, reason) => {
                    let _ = sink.send(Message::close_with(code, reason)).await;
                    break;
                }
            };
            if sent.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });

    let mut bucket = TokenBucket::new(100.0, 200.0);
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT));
    loop {
        let frame = tokio::select! {
            frame = stream.next() => frame,
            _ = kick.notified() => {
                let _ = tx.try_send(Outgoing::Close(1008, "too slow to read events"));
                break;
            }
        };
        let message = match frame {
            None => break,
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                let text = e.to_string();
                if text.contains("too long") || text.contains("Space limit") {
                    let _ = tx.send(Outgoing::Close(1009, "frame too large")).await;
                }
                tracing::debug!(client = %client_id, error = %text, "socket read failed");
                break;
            }
        };
        if message.is_close() {
            break;
        }
        if message.is_binary() {
            let _ = tx
                .send(Outgoing::Text(protocol::frame_error("binary frames are not supported")))
                .await;
            continue;
        }
        let Ok(text) = message.to_str() else {
            continue; // ping / pong: answered by the library
        };
        let request = match protocol::parse(text) {
            Ok(r) => r,
            Err(bad) => {
                let frame = match bad.token {
                    Some(token) => protocol::reply_error(&token, &Error::BadRequest(bad.message)),
                    None => protocol::frame_error(&bad.message),
                };
                let _ = tx.send(Outgoing::Text(frame)).await;
                continue;
            }
        };
        if !bucket.take() {
            let _ = tx
                .send(Outgoing::Text(protocol::reply_error(&request.token, &Error::RateLimited)))
                .await;
            continue;
        }
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            break;
        };
        let (engine, caller, doc, tx) = (engine.clone(), caller.clone(), doc.clone(), tx.clone());
        tokio::spawn(async move {
            let target = request.d.as_deref().unwrap_or(&doc);
            let result = match crate::engine::documents::validate_doc_id(target) {
                Ok(()) => {
                    actions::dispatch(&engine, &caller, target, &request.wa, &request.options)
                        .await
                }
                Err(_) => Err(Error::NoSuchDocument(target.to_string())),
            };
            let frame = match result {
                Ok(value) => protocol::reply(&request.token, value),
                Err(e) => protocol::reply_error(&request.token, &e),
            };
            let _ = tx.send(Outgoing::Text(frame)).await;
            drop(permit);
        });
    }
    engine.hub().leave(&doc, &client_id);
    drop(tx);
    // The writer ends once in-flight replies are written and every sender
    // (the hub's and the request tasks') is gone.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), writer).await;
    drop(keep);
    tracing::debug!(doc = %doc, client = %client_id, "socket left");
}
