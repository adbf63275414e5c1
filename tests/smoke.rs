mod common;
use common::*;
use serde_json::json;

#[tokio::test]
async fn create_and_accept_invite_over_websocket() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    alice.create_doc("doc1").await;
    let mut a = alice.ws("doc1").await;
    assert_eq!(a.hello["permissions"], "arw");
    let invite = a.ok("createInvite", None, json!({"permissions": "rw", "maxAge": 300})).await;
    assert_eq!(invite["webstrateId"], "doc1");
    let mut b = bob.ws("doc1").await;
    assert_eq!(b.hello["permissions"], "");
    let level = b.ok("acceptInvite", None, json!({"key": invite["key"]})).await;
    assert_eq!(level, "rw");
}
