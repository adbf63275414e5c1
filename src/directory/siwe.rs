//! The Sign-In-With-Ethereum (EIP-4361) text a wallet signed, rebuilt from a
//! CACAO payload. The signature only verifies if this text is byte-for-byte
//! what the wallet displayed, so the template follows `docs/directory.md` exactly
//! (including the two blank lines before `URI:` when there is no statement,
//! which older clients got wrong). A trailing ReCap resource extends the
//! statement (see `recap.rs`).

use super::cacao::Payload;
use super::did::Account;
use super::recap;

/// The message for `payload`, whose `iss` was parsed into `account`.
pub fn message(payload: &Payload, account: &Account) -> String {
    let mut text = format!(
        "{} wants you to sign in with your Ethereum account:\n{}\n\n",
        payload.domain, account.address
    );
    let statement = recap::statement(payload.statement.as_deref(), payload.resources.as_deref());
    if let Some(statement) = statement {
        text.push_str(&statement);
        text.push('\n');
    }
    text.push_str(&format!(
        "\nURI: {}\nVersion: {}\nChain ID: {}\nNonce: {}\nIssued At: {}",
        payload.aud, payload.version, account.chain_id, payload.nonce, payload.iat
    ));
    let optional = [
        ("Expiration Time", &payload.exp),
        ("Not Before", &payload.nbf),
        ("Request ID", &payload.request_id),
    ];
    for (label, value) in optional {
        if let Some(value) = value {
            text.push_str(&format!("\n{label}: {value}"));
        }
    }
    if let Some(resources) = payload.resources.as_ref().filter(|r| !r.is_empty()) {
        text.push_str("\nResources:");
        for resource in resources {
            text.push_str(&format!("\n- {resource}"));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::cacao::Cacao;
    use crate::directory::test_vectors;
    use serde_json::Value;

    fn rebuilt(cacao: &Value) -> String {
        let cacao: Cacao = serde_json::from_value(cacao.clone()).unwrap();
        let account = Account::from_pkh(&cacao.p.iss).unwrap();
        message(&cacao.p, &account)
    }

    #[test]
    fn every_cacao_vector_rebuilds_its_siwe_message() {
        for v in test_vectors()["cacao"].as_array().unwrap() {
            assert_eq!(rebuilt(&v["cacao"]), v["siwe_message"], "{}", v["name"]);
        }
    }

    #[test]
    fn synthetic_messages_rebuild() {
        let s = &test_vectors()["synthetic"];
        assert_eq!(
            rebuilt(&s["cacao_no_statement"]),
            s["cacao_no_statement_message"]
        );
        assert_eq!(
            rebuilt(&s["cacao_with_statement"]),
            s["cacao_with_statement_message"]
        );
    }

    #[test]
    fn optional_lines_come_in_template_order() {
        let mut cacao: Cacao =
            serde_json::from_value(test_vectors()["synthetic"]["cacao_no_statement"].clone())
                .unwrap();
        cacao.p.exp = Some("2030-01-01T00:00:00Z".into());
        cacao.p.nbf = Some("2020-01-01T00:00:00Z".into());
        cacao.p.request_id = Some("req-1".into());
        let account = Account::from_pkh(&cacao.p.iss).unwrap();
        let text = message(&cacao.p, &account);
        assert!(text.contains(
            "Issued At: 2023-11-14T22:13:20Z\nExpiration Time: 2030-01-01T00:00:00Z\nNot Before: 2020-01-01T00:00:00Z\nRequest ID: req-1\nResources:\n- https://keys.example.test"
        ));
        assert!(!text.ends_with('\n'));
    }
}
