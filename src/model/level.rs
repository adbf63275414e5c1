//! Permission levels. Because `w` implies `r` and `a` implies both, every
//! set of letters collapses to one of four totally ordered levels, so merging
//! is simply the maximum.

use std::fmt;

/// `""` < `"r"` < `"rw"` < `"arw"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Level {
    #[default]
    None,
    Read,
    Write,
    Admin,
}

impl Level {
    pub const ALL: [Level; 4] = [Level::None, Level::Read, Level::Write, Level::Admin];

    /// Parses any non-repeating combination of `a`, `r`, `w` (in any order).
    pub fn parse(input: &str) -> Result<Level, String> {
        let mut seen = [false; 3];
        let mut level = Level::None;
        for c in input.chars() {
            let (slot, implied) = match c {
                'r' => (0, Level::Read),
                'w' => (1, Level::Write),
                'a' => (2, Level::Admin),
                _ => {
                    return Err(format!(
                        "permissions must be letters from \"arw\", got {input:?}"
                    ))
                }
            };
            if seen[slot] {
                return Err(format!(
                    "permissions must not repeat a letter, got {input:?}"
                ));
            }
            seen[slot] = true;
            level = level.max(implied);
        }
        Ok(level)
    }

    /// The canonical string stored and sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "",
            Level::Read => "r",
            Level::Write => "rw",
            Level::Admin => "arw",
        }
    }

    /// Union of two permissions under implication.
    pub fn merge(self, other: Level) -> Level {
        self.max(other)
    }

    pub fn can_read(self) -> bool {
        self >= Level::Read
    }

    pub fn is_admin(self) -> bool {
        self == Level::Admin
    }

    /// Reads a stored level; unknown bytes (never written by us) mean none.
    pub fn from_stored(bytes: &[u8]) -> Level {
        std::str::from_utf8(bytes)
            .ok()
            .and_then(|s| Level::parse(s).ok())
            .unwrap_or(Level::None)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every string over {a, r, w} of length ≤ 3 with its letters' levels.
    fn all_inputs() -> Vec<(String, Option<Level>)> {
        let mut out = vec![(String::new(), Some(Level::None))];
        let letters = ['a', 'r', 'w'];
        let mut frontier = vec![String::new()];
        for _ in 0..3 {
            let mut next = Vec::new();
            for prefix in &frontier {
                for l in letters {
                    next.push(format!("{prefix}{l}"));
                }
            }
            for s in &next {
                let mut chars: Vec<char> = s.chars().collect();
                chars.sort();
                let repeats = chars.windows(2).any(|w| w[0] == w[1]);
                let expected = if repeats {
                    None
                } else if s.contains('a') {
                    Some(Level::Admin)
                } else if s.contains('w') {
                    Some(Level::Write)
                } else {
                    Some(Level::Read)
                };
                out.push((s.clone(), expected));
            }
            frontier = next;
        }
        out
    }

    #[test]
    fn parse_every_combination() {
        let inputs = all_inputs();
        assert_eq!(inputs.len(), 1 + 3 + 9 + 27);
        for (input, expected) in inputs {
            assert_eq!(Level::parse(&input).ok(), expected, "input {input:?}");
        }
    }

    #[test]
    fn parse_rejects_other_letters() {
        for bad in ["x", "R", "rx", " r", "r ", "aa", "rwar", "ä", "rwx"] {
            assert!(Level::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn canonical_strings_round_trip() {
        for level in Level::ALL {
            assert_eq!(Level::parse(level.as_str()), Ok(level));
            assert_eq!(level.to_string(), level.as_str());
        }
        assert_eq!(Level::parse("wr").unwrap().as_str(), "rw");
        assert_eq!(Level::parse("wa").unwrap().as_str(), "arw");
    }

    #[test]
    fn merge_all_pairs_is_union_under_implication() {
        // Letters each level grants, after implication.
        fn letters(l: Level) -> Vec<char> {
            l.as_str().chars().collect()
        }
        for a in Level::ALL {
            for b in Level::ALL {
                let merged = a.merge(b);
                let mut union: Vec<char> = letters(a);
                for c in letters(b) {
                    if !union.contains(&c) {
                        union.push(c);
                    }
                }
                let union: String = union.into_iter().collect();
                assert_eq!(merged, Level::parse(&union).unwrap(), "{a} + {b}");
                assert_eq!(merged, b.merge(a), "commutative {a} {b}");
                assert!(merged >= a && merged >= b, "never lowers {a} {b}");
            }
        }
        assert_eq!(Level::Read.merge(Level::parse("w").unwrap()).as_str(), "rw");
        assert_eq!(Level::Admin.merge(Level::Write).as_str(), "arw");
    }

    #[test]
    fn predicates_for_all_levels() {
        let table = [
            (Level::None, false, false),
            (Level::Read, true, false),
            (Level::Write, true, false),
            (Level::Admin, true, true),
        ];
        for (level, read, admin) in table {
            assert_eq!(level.can_read(), read, "{level}");
            assert_eq!(level.is_admin(), admin, "{level}");
        }
    }
}
