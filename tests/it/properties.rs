//! Property tests for the permission algebra and the invite rules.

use keystrate::engine::invites::{Acceptance, InviteRecord};
use keystrate::engine::options::{read_options, CreateOptions};
use keystrate::engine::{Error, Level, User};
use proptest::prelude::*;
use serde_json::json;

fn level() -> impl Strategy<Value = Level> {
    prop::sample::select(Level::ALL.to_vec())
}

/// Any string over a small alphabet that includes the valid letters.
fn perm_input() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec!['a', 'r', 'w', 'x', 'R', ' ']),
        0..6,
    )
    .prop_map(|v| v.into_iter().collect())
}

proptest! {
    #[test]
    fn parse_accepts_exactly_non_repeating_arw(input in perm_input()) {
        let valid = input.chars().all(|c| "arw".contains(c))
            && input.chars().collect::<std::collections::HashSet<_>>().len() == input.chars().count();
        prop_assert_eq!(Level::parse(&input).is_ok(), valid);
    }

    #[test]
    fn parse_ignores_order(input in perm_input()) {
        let mut sorted: Vec<char> = input.chars().collect();
        sorted.sort();
        let sorted: String = sorted.into_iter().collect();
        prop_assert_eq!(Level::parse(&input).ok(), Level::parse(&sorted).ok());
    }

    #[test]
    fn merge_is_a_join(a in level(), b in level(), c in level()) {
        prop_assert_eq!(a.merge(b), b.merge(a));
        prop_assert_eq!(a.merge(b).merge(c), a.merge(b.merge(c)));
        prop_assert_eq!(a.merge(a), a);
        prop_assert!(a.merge(b) >= a && a.merge(b) >= b);
        prop_assert_eq!(Level::parse(a.as_str()), Ok(a));
        // Implication: admin implies write implies read.
        prop_assert!(!a.is_admin() || a.can_read());
    }

    #[test]
    fn create_options_accept_exactly_the_bounds(max_age in -10i64..2_600_000, max_uses in -10i64..1_000_010, as_string in any::<bool>()) {
        let value = |n: i64| if as_string { json!(n.to_string()) } else { json!(n) };
        let parsed = read_options::<CreateOptions>(json!({"maxAge": value(max_age), "maxUses": value(max_uses)}));
        let ok = (1..=2_592_000).contains(&max_age) && (1..=1_000_000).contains(&max_uses);
        prop_assert_eq!(parsed.is_ok(), ok, "{} {}", max_age, max_uses);
        if let Ok(o) = parsed {
            prop_assert_eq!(o.max_age, max_age);
            prop_assert_eq!(o.max_uses, Some(max_uses as u64));
            prop_assert_eq!(o.permissions, Level::Read);
        } else {
            prop_assert!(matches!(parsed, Err(Error::BadRequest(_))));
        }
    }

    /// Validity holds iff: same document, not expired, creator admin, and a
    /// use left or the caller already accepted.
    #[test]
    fn invite_validity_rule(
        same_doc in any::<bool>(),
        age in -5i64..5,
        creator_admin in any::<bool>(),
        max_uses in prop::option::of(1u64..4),
        acceptors in 0usize..5,
        caller_accepted in any::<bool>(),
    ) {
        let now = 1_000_000;
        let mut accepted_by: Vec<Acceptance> = (0..acceptors)
            .map(|i| Acceptance { user: User::local(&format!("u{i}")), at: 0 })
            .collect();
        let caller = User::local("caller");
        if caller_accepted {
            accepted_by.push(Acceptance { user: caller.clone(), at: 0 });
        }
        let invite = InviteRecord {
            key: "k".repeat(64),
            doc: "doc".into(),
            permissions: "r".into(),
            created_at: 0,
            expires_at: now + age,
            created_by: User::local("admin"),
            max_uses,
            accepted_by,
        };
        let result = invite.validity(if same_doc { "doc" } else { "other" }, now, creator_admin, &caller);
        let uses = invite.accepted_by.len() as u64;
        let expected = if !same_doc || age <= 0 {
            Err(Error::InvalidKey)
        } else if !creator_admin {
            Err(Error::InviterNotAdmin)
        } else if max_uses.is_some_and(|m| uses >= m) && !caller_accepted {
            Err(Error::UsedUp)
        } else {
            Ok(())
        };
        prop_assert_eq!(result.map_err(|e| e.code()), expected.map_err(|e: Error| e.code()));
    }
}
