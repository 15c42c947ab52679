//! Topic matchers: what a subscriber listens to (`match`, `match_exact`,
//! `match_urlpattern`) and what a token grants (`{"match": .., "match_type": ..}`).
//!
//! `exact` compares bytes; `urlpattern` is the WHATWG URL Pattern standard (the
//! `urlpattern` crate, on the `regex` crate, whose matching is linear in the input:
//! no pattern can make it backtrack), with the hub's URL as the base of relative
//! patterns and topics; `*` matches every topic, whatever the type. A URL pattern is
//! evaluated once per (pattern, topic): [`Matchers`] hands out one shared matcher per
//! pattern, and each remembers its answers for recent topics (bounded).

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use parking_lot::{Mutex, RwLock};
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
use url::Url;
use urlpattern::{UrlPattern, UrlPatternInit, UrlPatternMatchInput, UrlPatternOptions};

/// The longest matcher pattern, in bytes.
pub const MAX_PATTERN_BYTES: usize = 1024;
/// Topics whose answers one URL pattern remembers; past it, it starts afresh.
const REMEMBERED_TOPICS: usize = 4096;

/// How a matcher reads its pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchType {
    Exact,
    UrlPattern,
}

impl MatchType {
    /// The type's name, as in `match_<name>` and `match_type`.
    pub fn name(self) -> &'static str {
        match self {
            MatchType::Exact => "exact",
            MatchType::UrlPattern => "urlpattern",
        }
    }

    /// The type a `match_type` value names, if the hub supports it.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "exact" => Some(MatchType::Exact),
            "urlpattern" => Some(MatchType::UrlPattern),
            _ => None,
        }
    }
}

/// Why a matcher was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MatcherError {
    #[error("the pattern {0:?} has a control or format character")]
    Character(String),
    #[error("a pattern is longer than {MAX_PATTERN_BYTES} bytes")]
    TooLong,
    #[error("{pattern:?} is not a URL pattern: {why}")]
    NotAPattern { pattern: String, why: String },
}

/// One compiled matcher.
pub struct Matcher {
    pub match_type: MatchType,
    pub pattern: String,
    compiled: Compiled,
}

enum Compiled {
    /// `*`.
    Any,
    Exact,
    Pattern {
        pattern: Box<UrlPattern>,
        base: Url,
        answers: RwLock<HashMap<Arc<str>, bool>>,
    },
}

impl Matcher {
    /// Whether `topic` matches.
    pub fn matches(&self, topic: &str) -> bool {
        match &self.compiled {
            Compiled::Any => true,
            Compiled::Exact => self.pattern == topic,
            Compiled::Pattern {
                pattern,
                base,
                answers,
            } => {
                if let Some(known) = answers.read().get(topic) {
                    return *known;
                }
                // A topic that is not a URL reference matches no URL pattern.
                let url = base.join(topic);
                let matched = url.is_ok_and(|url| {
                    pattern
                        .test(UrlPatternMatchInput::Url(url))
                        .unwrap_or(false)
                });
                let mut answers = answers.write();
                if answers.len() >= REMEMBERED_TOPICS {
                    answers.clear();
                }
                answers.insert(topic.into(), matched);
                matched
            }
        }
    }
}

/// Compiles matchers against the hub's URL, one per (type, pattern) while any holder
/// keeps it, so subscribers and tokens with the same pattern share its answers.
pub struct Matchers {
    base: Url,
    live: Mutex<HashMap<(MatchType, String), Weak<Matcher>>>,
}

impl Matchers {
    /// Matchers whose relative patterns and topics resolve against `hub_url`.
    pub fn new(hub_url: Url) -> Self {
        let live = Mutex::new(HashMap::new());
        Self {
            base: hub_url,
            live,
        }
    }

    /// The hub's URL.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// The matcher for `pattern` read as `match_type`.
    pub fn get(&self, match_type: MatchType, pattern: &str) -> Result<Arc<Matcher>, MatcherError> {
        if !is_clean(pattern) {
            return Err(MatcherError::Character(pattern.into()));
        }
        if pattern.len() > MAX_PATTERN_BYTES {
            return Err(MatcherError::TooLong);
        }
        let key = (match_type, pattern.to_owned());
        if let Some(matcher) = self.live.lock().get(&key).and_then(Weak::upgrade) {
            return Ok(matcher);
        }
        let compiled = match match_type {
            _ if pattern == "*" => Compiled::Any,
            MatchType::Exact => Compiled::Exact,
            MatchType::UrlPattern => {
                let not_a_pattern = |e: urlpattern::Error| MatcherError::NotAPattern {
                    pattern: pattern.into(),
                    why: e.to_string(),
                };
                let init = UrlPatternInit::parse_constructor_string::<regex::Regex>(
                    pattern,
                    Some(self.base.clone()),
                )
                .map_err(not_a_pattern)?;
                // `ignore_case` stays off, as Mercure requires.
                let options = UrlPatternOptions::default();
                let compiled =
                    UrlPattern::<regex::Regex>::parse(init, options).map_err(not_a_pattern)?;
                Compiled::Pattern {
                    pattern: Box::new(compiled),
                    base: self.base.clone(),
                    answers: RwLock::new(HashMap::new()),
                }
            }
        };
        let matcher = Arc::new(Matcher {
            match_type,
            pattern: pattern.to_owned(),
            compiled,
        });
        let mut live = self.live.lock();
        // Forget the matchers nobody holds any more, now and then.
        if live.len() >= 1024 && live.len().is_power_of_two() {
            live.retain(|_, weak| weak.strong_count() > 0);
        }
        live.insert(key, Arc::downgrade(&matcher));
        Ok(matcher)
    }
}

/// Whether `value` has no C0 or C1 control character, no DEL, and no format character
/// (Unicode `Cf`): what Mercure allows in topics, matchers, ids and types.
pub fn is_clean(value: &str) -> bool {
    let bad = |c: char| c.is_control() || c.general_category() == GeneralCategory::Format;
    !value.chars().any(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn matchers() -> Result<Matchers, url::ParseError> {
        Ok(Matchers::new(Url::parse(
            "https://hub.example/.well-known/mercure",
        )?))
    }

    #[test]
    fn a_pathological_pattern_is_evaluated_in_linear_time() -> TestResult {
        // With a backtracking engine, `(a+)+b` against many a's and no `b` takes
        // exponential time; the regex crate's automaton reads the topic once.
        let matcher = matchers()?.get(MatchType::UrlPattern, "/:x((?:a+)+b)")?;
        let topic = format!("/{}!", "a".repeat(5000));
        let started = std::time::Instant::now();
        assert!(!matcher.matches(&topic));
        let took = started.elapsed();
        assert!(took < std::time::Duration::from_millis(50), "took {took:?}");
        assert!(matcher.matches(&format!("/{}b", "a".repeat(5000))));
        Ok(())
    }

    #[test]
    fn one_matcher_per_pattern_is_shared_and_remembers_its_answers() -> TestResult {
        let matchers = matchers()?;
        let a = matchers.get(MatchType::UrlPattern, "/books/:id")?;
        let b = matchers.get(MatchType::UrlPattern, "/books/:id")?;
        assert!(Arc::ptr_eq(&a, &b));
        assert!(a.matches("/books/1") && b.matches("/books/1"));
        // Exact, with the same text, is another matcher.
        let exact = matchers.get(MatchType::Exact, "/books/:id")?;
        assert!(!Arc::ptr_eq(&exact, &a));
        assert!(exact.matches("/books/:id") && !exact.matches("/books/1"));
        Ok(())
    }

    #[test]
    fn url_patterns_are_case_sensitive_but_hosts_are_not() -> TestResult {
        let matcher = matchers()?.get(MatchType::UrlPattern, "https://example.com/Books/:id")?;
        assert!(matcher.matches("https://example.com/Books/1"));
        assert!(!matcher.matches("https://example.com/books/1"));
        assert!(
            matcher.matches("https://EXAMPLE.com/Books/1"),
            "hosts are canonicalized"
        );
        Ok(())
    }

    #[test]
    fn values_with_control_or_format_characters_are_refused() {
        let bad = [
            "a\u{0}",
            "a\u{1f}",
            "a\u{7f}",
            "a\u{80}",
            "a\u{9f}",
            "a\u{200b}",
            "a\u{feff}",
            "a\u{2066}",
        ];
        for value in bad {
            assert!(!is_clean(value), "{value:?}");
        }
        for value in ["plain", "https://example.com/ä/:id", "日本", "a b"] {
            assert!(is_clean(value), "{value:?}");
        }
    }
}
