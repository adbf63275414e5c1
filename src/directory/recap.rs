//! ReCap (EIP-5573) statements. When a CACAO's last resource is a
//! `urn:recap:` capability, the SIWE text a wallet signs does not show the
//! payload's `statement` as is: it appends a sentence listing the
//! capabilities ("I further authorize the stated URI …"). WalletConnect's
//! clients (the notify client's recap registration) sign that sentence, so
//! it must be rebuilt here exactly as `@walletconnect/utils`
//! `formatStatementFromRecap` writes it, quirks included.

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine as _;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

const PREFIX: &str = "urn:recap:";
const SENTENCE: &str =
    "I further authorize the stated URI to perform the following actions on my behalf: ";

/// The statement the wallet saw: `statement` extended with the capabilities
/// of a trailing recap resource, or `statement` unchanged without one (or
/// when the recap does not decode: the signature check then fails).
pub fn statement<'p>(
    statement: Option<&'p str>,
    resources: Option<&[String]>,
) -> Option<Cow<'p, str>> {
    let recap = resources
        .and_then(<[String]>::last)
        .and_then(|r| r.strip_prefix(PREFIX))
        .and_then(decode);
    match (statement, recap) {
        (Some(s), _) if s.contains(SENTENCE) => Some(Cow::Borrowed(s)),
        (Some(s), Some(recap)) if !s.is_empty() => Some(Cow::Owned(format!("{s} {recap}"))),
        (_, Some(recap)) => Some(Cow::Owned(recap)),
        (s, None) => s.map(Cow::Borrowed),
    }
}

#[derive(Deserialize)]
struct Recap {
    att: Ordered<Ordered<IgnoredAny>>,
}

/// The recap's sentence, or `None` when it is not a valid recap.
fn decode(encoded: &str) -> Option<String> {
    // Written as base64url; also read the standard alphabet and padding.
    let normalised: String = encoded
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    let json = STANDARD_NO_PAD.decode(normalised).ok()?;
    let recap: Recap = serde_json::from_slice(&json).ok()?;
    if recap.att.0.is_empty() {
        return None;
    }
    let mut counter = 0;
    let mut per_resource = Vec::new();
    for (resource, abilities) in &recap.att.0 {
        let mut actions = abilities
            .0
            .iter()
            .map(|(ability, _)| ability.split_once('/'))
            .collect::<Option<Vec<_>>>()?;
        if actions.is_empty() {
            return None;
        }
        // JavaScript's `localeCompare` on the action, approximated by a
        // stable case-insensitive order (like `Array.sort`,
        // lowercase first on ties).
        actions.sort_by(|a, b| {
            (a.1.to_lowercase().cmp(&b.1.to_lowercase())).then_with(|| b.1.cmp(a.1))
        });
        // Group by namespace, in the order namespaces first appear.
        let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
        for (namespace, action) in actions {
            match groups.iter_mut().find(|(n, _)| *n == namespace) {
                Some((_, list)) => list.push(action),
                None => groups.push((namespace, vec![action])),
            }
        }
        let sentences: Vec<String> = groups
            .into_iter()
            .map(|(namespace, list)| {
                counter += 1;
                format!(
                    "({counter}) '{namespace}': '{}' for '{resource}'.",
                    list.join("', '")
                )
            })
            .collect();
        // The reference replaces only the first ".," of the joined list.
        per_resource.push(sentences.join(", ").replacen(".,", ".", 1));
    }
    Some(format!("{SENTENCE}{}", per_resource.join(" ")))
}

/// A JSON object's entries in document order (serde_json's map would sort
/// them, and the sentence lists them in the order the wallet saw).
struct Ordered<T>(Vec<(String, T)>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Ordered<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Entries<T> {
            type Value = Ordered<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Ordered(entries))
            }
        }
        deserializer.deserialize_map(Entries(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known answer produced by `@walletconnect/utils` 2.25 `formatMessage`
    /// (two resources, actions out of order, three namespaces on one
    /// resource so the ".," quirk shows).
    const RECAP: &str = "urn:recap:eyJhdHQiOnsiaHR0cHM6Ly9ub3RpZnkud2FsbGV0Y29ubmVjdC5jb20vYWxsLWFwcHMiOnsibWFuYWdlL2FsbC1hcHBzLW5vdGlmaWNhdGlvbnMiOlt7fV19LCJodHRwczovL2IuZXhhbXBsZSI6eyJrdi9wdXQiOlt7fV0sImt2L2dldCI6W3t9XSwic2lnbi94Ijpbe31dLCJjcnVkL3oiOlt7fV0sImNydWQvYSI6W3t9XX19fQ";
    const EXPECTED: &str = "I further authorize the stated URI to perform the following actions on my behalf: (1) 'manage': 'all-apps-notifications' for 'https://notify.walletconnect.com/all-apps'. (2) 'crud': 'a', 'z' for 'https://b.example'. (3) 'kv': 'get', 'put' for 'https://b.example'., (4) 'sign': 'x' for 'https://b.example'.";

    fn resources() -> Vec<String> {
        vec!["https://keys.example".into(), RECAP.into()]
    }

    #[test]
    fn matches_the_walletconnect_reference() {
        assert_eq!(statement(None, Some(&resources())).unwrap(), EXPECTED);
        assert_eq!(
            statement(Some("Hello."), Some(&resources())).unwrap(),
            format!("Hello. {EXPECTED}")
        );
        // A statement that already carries the sentence stays as it is.
        assert_eq!(
            statement(Some(EXPECTED), Some(&resources())).unwrap(),
            EXPECTED
        );
    }

    #[test]
    fn without_a_trailing_recap_the_statement_is_unchanged() {
        let plain = vec!["https://keys.example".to_string()];
        assert_eq!(statement(Some("Hi"), Some(&plain)).unwrap(), "Hi");
        assert_eq!(statement(None, Some(&plain)), None);
        let recap_first = vec![RECAP.to_string(), "https://keys.example".into()];
        assert_eq!(statement(None, Some(&recap_first)), None);
        for broken in ["urn:recap:!!", "urn:recap:e30", "urn:recap:eyJhdHQiOnt9fQ"] {
            assert_eq!(
                statement(None, Some(&[broken.to_string()])),
                None,
                "{broken}"
            );
        }
    }
}
