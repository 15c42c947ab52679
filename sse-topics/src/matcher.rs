//! Topic matchers: what a subscriber listens to (`match`, `match_exact`,
//! `match_urlpattern`) and what a token grants (`{"match": .., "match_type": ..}`).
//!
//! `exact` compares bytes; `urlpattern` is the WHATWG URL Pattern standard (the
//! `urlpattern` crate) with the hub's URL as the base of relative patterns and topics;
//! `*` matches every topic, whatever the type.
//!
//! What one request can cost is bounded, because the patterns are the client's:
//!
//! - **Compiling.** A URL pattern becomes regular expressions, compiled here by
//!   `regex-automata` (the engine of the `regex` crate: matching is linear in the
//!   topic, no pattern can make it backtrack) with a size limit per expression and a
//!   budget of compiled bytes per request ([`MatchLimits::compiled_bytes`]), and within
//!   [`COMPILE_TIME`]: `\w{100}` would otherwise be megabytes of automaton. Callers
//!   compile only once the request is authenticated and admitted, off the runtime's
//!   worker threads ([`Matchers::compile`]).
//! - **Sharing.** One matcher per (type, pattern) while anyone holds it, and one
//!   compiled expression per expression text (`^(.*)$` is in nearly every pattern).
//! - **Answers.** A URL pattern's answer for a topic is remembered in one cache for the
//!   whole hub, bounded in bytes ([`MatchLimits::cache_bytes`]), so fan-out to N
//!   subscribers with the same pattern costs one evaluation, and no subscriber can make
//!   the hub remember more than the bound.

use std::cell::Cell;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use regex_automata::meta;

use super::uri_template;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
use url::Url;
use urlpattern::matcher::InnerMatcher;
use urlpattern::{RegexSyntax, UrlPattern, UrlPatternInit, UrlPatternOptions};

/// The longest matcher pattern, in bytes.
pub const MAX_PATTERN_BYTES: usize = 1024;
/// The most one request may spend compiling its URL patterns; past it, `400`.
pub const COMPILE_TIME: Duration = Duration::from_millis(50);
/// The largest automaton one regular expression of a URL pattern may compile to.
/// Matching costs up to the automaton's states times the topic's length (no lazy DFA),
/// so this also bounds one (pattern, topic) evaluation: at most ~3.5 ms for a 2 KB
/// topic (measured: `/:x([a-y]*[a-y]{0,141}z)`, the largest of that shape it takes).
const NFA_BYTES: usize = 16 * 1024;

/// Bounds on the work one subscription, or one token, can make the hub do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
pub struct MatchLimits {
    /// The most matchers one subscription may carry.
    #[arg(long = "max-matchers", env = "MAX_MATCHERS", default_value_t = MAX_MATCHERS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1000))]
    pub max_matchers: usize,
    /// The most bytes the new URL patterns of one request (a subscription's, a
    /// token's) may compile to; past it, `400 matcher-too-costly`. Patterns other
    /// subscribers already hold cost nothing.
    #[arg(long = "max-compiled-bytes", env = "MAX_COMPILED_BYTES", default_value_t = COMPILED_BYTES)]
    pub compiled_bytes: usize,
    /// Bytes of remembered (URL pattern, topic) answers, for the whole hub.
    #[arg(long = "match-cache-bytes", env = "MATCH_CACHE_BYTES", default_value_t = CACHE_BYTES)]
    pub cache_bytes: usize,
    /// The most bytes of expressions the open subscriptions of one client address may
    /// run on every topic (their patterns' custom regular expressions, and Mercure 0.x
    /// templates' expressions; literal parts and whole segments weigh nothing); past it,
    /// `429 patterns-too-costly`.
    #[arg(long = "max-pattern-weight-per-client", env = "MAX_PATTERN_WEIGHT_PER_CLIENT", default_value_t = CLIENT_WEIGHT)]
    pub client_weight: usize,
    /// The most one request may spend compiling its URL patterns ([`COMPILE_TIME`]; not
    /// an option: the byte budget is the bound to tune).
    #[arg(skip = COMPILE_TIME)]
    pub compile_time: Duration,
}

const MAX_MATCHERS: usize = 50;
const COMPILED_BYTES: usize = 1024 * 1024;
const CACHE_BYTES: usize = 8 * 1024 * 1024;
const CLIENT_WEIGHT: usize = 1024 * 1024;

impl Default for MatchLimits {
    fn default() -> Self {
        Self {
            max_matchers: MAX_MATCHERS,
            compiled_bytes: COMPILED_BYTES,
            cache_bytes: CACHE_BYTES,
            client_weight: CLIENT_WEIGHT,
            compile_time: COMPILE_TIME,
        }
    }
}

/// A matcher as a request asks for it, not compiled yet: its type and pattern.
pub type Selector = (MatchType, String);

/// How a matcher reads its pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchType {
    Exact,
    UrlPattern,
    /// Mercure 0.x's `topic=` selectors (`--protocol-compat 8` only): a topic equal
    /// to the text, or matching it as an RFC 6570 URI template (`uri_template.rs`).
    UriTemplate,
}

impl MatchType {
    /// The type's name, as in `match_<name>` and `match_type`.
    pub fn name(self) -> &'static str {
        match self {
            MatchType::Exact => "exact",
            MatchType::UrlPattern => "urlpattern",
            MatchType::UriTemplate => "uritemplate",
        }
    }

    /// The type a `match_type` value names, if the hub supports it (a 1.0 type: URI
    /// templates come only from 0.x subscribers' `topic=`).
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
    #[error("the pattern {0:?} has a control, format or line-separator character")]
    Character(String),
    #[error("a pattern is longer than {MAX_PATTERN_BYTES} bytes")]
    TooLong,
    #[error("{pattern:?} is not a URL pattern: {why}")]
    NotAPattern { pattern: String, why: String },
    #[error(
        "the URL pattern {0:?} is too costly to compile (its expressions would take more memory or time than this hub allows per request)"
    )]
    TooCostly(String),
}

/// One compiled matcher.
pub struct Matcher {
    pub match_type: MatchType,
    pub pattern: String,
    compiled: Compiled,
    /// The bytes of the expressions it runs when it matches a topic (0 for exact, `*`,
    /// and URL patterns of literal parts and whole segments): what one evaluation can
    /// cost grows with them.
    pub weight: usize,
    /// The last topic a URL pattern was asked about, and its answer: every subscriber
    /// holding this matcher asks about the same update's topic in turn, so all but the
    /// first are answered here, without parsing the topic or asking the shared answers.
    last: Mutex<Option<(Box<str>, bool)>>,
}

enum Compiled {
    /// `*`.
    Any,
    Exact,
    Pattern {
        pattern: Box<UrlPattern<BoundedRegex>>,
        /// Names this matcher in the answers cache.
        id: u64,
        answers: Arc<Answers>,
        base: Url,
    },
    /// A URI template (the topic equal to the pattern matches too, as in Mercure 0.x).
    Template {
        regex: Arc<meta::Regex>,
        id: u64,
        answers: Arc<Answers>,
    },
}

impl Matcher {
    /// Whether `topic` matches.
    pub fn matches(&self, topic: &str) -> bool {
        self.matches_with(topic, &mut None, false, true) == Some(true)
    }

    /// Whether `topic` matches. For a URL pattern: the remembered answer, else the
    /// topic parsed as a URL (into `url`, once for all the matchers a caller tries) and
    /// matched. With `parse_first`, the topic is parsed and matched before the cache is
    /// asked, and only a match that got past the pattern's literal parts is looked up
    /// and remembered: for a caller with many patterns, one parse costs less than a
    /// lookup per pattern, and a replay of topics it does not select fills no cache.
    /// Without `evaluate`, `None` where the answer takes evaluating an expression.
    fn matches_with(
        &self,
        topic: &str,
        url: &mut Option<Option<Url>>,
        parse_first: bool,
        evaluate: bool,
    ) -> Option<bool> {
        match &self.compiled {
            Compiled::Any => Some(true),
            Compiled::Exact => Some(self.pattern == topic),
            Compiled::Template { .. } if self.pattern == topic => Some(true),
            Compiled::Template { regex, id, answers } => {
                let key = AnswerRef {
                    matcher: *id,
                    topic,
                };
                if let Some(known) = answers.get(&key) {
                    return Some(known);
                }
                if !evaluate {
                    return None;
                }
                let matched = regex.is_match(topic);
                answers.insert(AnswerKey::new(*id, topic), matched);
                Some(matched)
            }
            Compiled::Pattern {
                pattern,
                id,
                answers,
                base,
            } => {
                // Another subscriber may have just asked (not waiting for it if it is
                // asking now).
                if let Some(last) = self.last.try_lock()
                    && let Some((known, answer)) = last.as_ref()
                    && **known == *topic
                {
                    return Some(*answer);
                }
                let key = AnswerRef {
                    matcher: *id,
                    topic,
                };
                // Literal parts and whole segments are tested faster than an answer is
                // looked up and remembered: only expressions' answers are.
                let remembered = self.weight > 0;
                if remembered
                    && !parse_first
                    && let Some(known) = answers.get(&key)
                {
                    return Some(known);
                }
                // A topic that is not a URL reference matches no URL pattern.
                let parsed = url.get_or_insert_with(|| base.join(topic).ok());
                let Some(url) = parsed.as_ref() else {
                    return Some(false);
                };
                if parse_first || !evaluate {
                    let literal = |m: &urlpattern::matcher::Matcher<BoundedRegex>, input: &str| {
                        input.starts_with(m.prefix.as_str()) && input.ends_with(m.suffix.as_str())
                    };
                    let path = url::quirks::pathname(url);
                    if !literal(&pattern.pathname.matcher, path) {
                        return Some(false);
                    }
                }
                if remembered
                    && parse_first
                    && let Some(known) = answers.get(&key)
                {
                    return Some(known);
                }
                if !evaluate && remembered {
                    return None;
                }
                let matched = url_matches(pattern, url);
                if remembered {
                    answers.insert(AnswerKey::new(*id, topic), matched);
                }
                if let Some(mut last) = self.last.try_lock() {
                    *last = Some((topic.into(), matched));
                }
                Some(matched)
            }
        }
    }
}

/// The bytes of the expressions `pattern` runs when it matches (its components that are
/// neither literal nor one whole segment).
fn expression_bytes(pattern: &UrlPattern<BoundedRegex>) -> usize {
    let components = [
        &pattern.protocol,
        &pattern.username,
        &pattern.password,
        &pattern.hostname,
        &pattern.port,
        &pattern.pathname,
        &pattern.search,
        &pattern.hash,
    ];
    let bytes = |c: &&urlpattern::component::Component<BoundedRegex>| match &c.matcher.inner {
        InnerMatcher::RegExp { regexp: Ok(r) } => r.regex.memory_usage(),
        _ => 0,
    };
    components.iter().map(bytes).sum()
}

/// Whether `url` matches `pattern`: what `UrlPattern::test` answers, component by
/// component as the `urlpattern` crate's matchers run (literal prefix and suffix, then
/// a literal, one segment, or the expression), on the same text (`url::quirks` is what
/// it reads), without building a match result or capturing groups: no allocation, and
/// a topic that differs in a literal part is refused before any expression runs.
fn url_matches(pattern: &UrlPattern<BoundedRegex>, url: &Url) -> bool {
    let fits = |matcher: &urlpattern::matcher::Matcher<BoundedRegex>, input: &str| {
        if matcher.ignore_case {
            return matcher.matches(input).is_some(); // never set here; the crate's own way
        }
        let (prefix, suffix) = (matcher.prefix.as_str(), matcher.suffix.as_str());
        if input.len() < prefix.len() + suffix.len()
            || !input.starts_with(prefix)
            || !input.ends_with(suffix)
        {
            return false;
        }
        let Some(inner) = input.get(prefix.len()..input.len() - suffix.len()) else {
            return false;
        };
        match &matcher.inner {
            InnerMatcher::Literal { literal } => inner == literal,
            InnerMatcher::SingleCapture {
                filter,
                allow_empty,
            } => (*allow_empty || !inner.is_empty()) && filter.is_none_or(|f| !inner.contains(f)),
            InnerMatcher::RegExp { regexp } => {
                regexp.as_ref().is_ok_and(|r| r.regex.is_match(inner))
            }
        }
    };
    fits(&pattern.protocol.matcher, url.scheme())
        && fits(
            &pattern.hostname.matcher,
            url.host_str().unwrap_or_default(),
        )
        && fits(&pattern.pathname.matcher, url::quirks::pathname(url))
        && fits(&pattern.port.matcher, url::quirks::port(url))
        && fits(&pattern.username.matcher, url.username())
        && fits(
            &pattern.password.matcher,
            url.password().unwrap_or_default(),
        )
        && fits(&pattern.search.matcher, url.query().unwrap_or_default())
        && fits(&pattern.hash.matcher, url.fragment().unwrap_or_default())
}

/// From this many URL patterns, a selection parses each topic before asking the cache
/// (see [`Matcher::matches_with`]).
const PARSE_FIRST: usize = 4;

/// A set of matchers, tried cheaply: `*` at once, exact ones by comparing bytes
/// (lengths first), URL patterns through the shared answers.
#[derive(Default)]
pub struct Selection {
    any: bool,
    /// How many are URL patterns.
    patterns: usize,
    all: Vec<Arc<Matcher>>,
}

impl Selection {
    /// The selection of `matchers`.
    pub fn new(matchers: Vec<Arc<Matcher>>) -> Self {
        let kind = |m: &&Arc<Matcher>| matches!(m.compiled, Compiled::Pattern { .. });
        Self {
            any: matchers.iter().any(|m| matches!(m.compiled, Compiled::Any)),
            patterns: matchers.iter().filter(kind).count(),
            all: matchers,
        }
    }

    /// The matchers, in the order given.
    pub fn matchers(&self) -> &[Arc<Matcher>] {
        &self.all
    }

    /// The topics it selects, when every matcher is an exact topic (none is `*`, a
    /// URL pattern or a URI template): then only the updates naming one of them can
    /// match, and the hub wakes its subscriber for those alone.
    pub fn exact_topics(&self) -> Option<Vec<&str>> {
        let exact = |m: &Arc<Matcher>| matches!(m.compiled, Compiled::Exact);
        self.all
            .iter()
            .map(|m| exact(m).then_some(m.pattern.as_str()))
            .collect()
    }

    /// Whether any matcher matches any of `topics`.
    pub fn matches_any<T: AsRef<str>>(&self, topics: &[T]) -> bool {
        self.decide_any(topics, true) == Some(true)
    }

    /// Whether any matcher matches any of `topics`, if that can be told without
    /// evaluating an expression (from literal parts, whole segments and remembered
    /// answers); `None` if not.
    pub fn quick_any<T: AsRef<str>>(&self, topics: &[T]) -> Option<bool> {
        self.decide_any(topics, false)
    }

    /// Whether any matcher matches `topic`.
    pub fn matches(&self, topic: &str) -> bool {
        self.decide(topic, true) == Some(true)
    }

    fn decide_any<T: AsRef<str>>(&self, topics: &[T], evaluate: bool) -> Option<bool> {
        let mut undecided = false;
        for topic in topics {
            match self.decide(topic.as_ref(), evaluate) {
                Some(true) => return Some(true),
                Some(false) => {}
                None => undecided = true,
            }
        }
        (!undecided).then_some(false)
    }

    fn decide(&self, topic: &str, evaluate: bool) -> Option<bool> {
        if self.any {
            return Some(true);
        }
        let exact = |m: &Arc<Matcher>| matches!(m.compiled, Compiled::Exact);
        if self.all.iter().any(|m| exact(m) && m.pattern == topic) {
            return Some(true);
        }
        let mut url = None;
        let parse_first = self.patterns >= PARSE_FIRST;
        let mut undecided = false;
        for matcher in self.all.iter().filter(|m| !exact(m)) {
            match matcher.matches_with(topic, &mut url, parse_first, evaluate) {
                Some(true) => return Some(true),
                Some(false) => {}
                None => undecided = true,
            }
        }
        (!undecided).then_some(false)
    }
}

/// Compiles matchers against the hub's URL, one per (type, pattern) while any holder
/// keeps it, so subscribers and tokens with the same pattern share it and its answers.
pub struct Matchers {
    base: Url,
    limits: MatchLimits,
    live: Mutex<HashMap<(MatchType, String), Weak<Matcher>>>,
    answers: Arc<Answers>,
    next_id: AtomicU64,
}

impl Matchers {
    /// Matchers whose relative patterns and topics resolve against `hub_url`.
    pub fn new(hub_url: Url, limits: MatchLimits) -> Self {
        let cache_bytes = u64::try_from(limits.cache_bytes).unwrap_or(u64::MAX);
        let estimated = (limits.cache_bytes / 128).max(16);
        Self {
            base: hub_url,
            limits,
            live: Mutex::new(HashMap::new()),
            answers: Arc::new(Answers::with_weighter(estimated, cache_bytes, AnswerWeight)),
            next_id: AtomicU64::new(1),
        }
    }

    /// The hub's URL.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// The bounds these matchers keep.
    pub fn limits(&self) -> MatchLimits {
        self.limits
    }

    /// Checks a pattern's text without compiling it (cheap: do it before anything else).
    pub fn check(pattern: &str) -> Result<(), MatcherError> {
        if pattern.len() > MAX_PATTERN_BYTES {
            return Err(MatcherError::TooLong);
        }
        if !is_clean(pattern) {
            return Err(MatcherError::Character(pattern.into()));
        }
        Ok(())
    }

    /// The matchers for `wanted`, compiling those nobody holds yet within one request's
    /// budget ([`MatchLimits::compiled_bytes`] and [`MatchLimits::compile_time`]). Compiling can take
    /// milliseconds: call it from a blocking thread (`tokio::task::spawn_blocking`).
    pub fn compile(&self, wanted: &[Selector]) -> Result<Vec<Arc<Matcher>>, MatcherError> {
        let started = Instant::now();
        let _budget = Budget::start(self.limits.compiled_bytes);
        let mut matchers = Vec::with_capacity(wanted.len());
        for (match_type, pattern) in wanted {
            if started.elapsed() > self.limits.compile_time {
                return Err(MatcherError::TooCostly(pattern.clone()));
            }
            matchers.push(self.get(*match_type, pattern)?);
        }
        Ok(matchers)
    }

    /// [`Matchers::compile`] on a blocking thread when any of `wanted` is a URL pattern
    /// nobody holds yet; at once otherwise (nothing to compile).
    pub async fn compile_off_workers(
        self: &Arc<Self>,
        wanted: Vec<Selector>,
    ) -> Result<Vec<Arc<Matcher>>, MatcherError> {
        if self.all_compiled(&wanted) {
            return self.compile(&wanted);
        }
        let matchers = Arc::clone(self);
        let compiled = tokio::task::spawn_blocking(move || matchers.compile(&wanted)).await;
        compiled.unwrap_or_else(|_| Err(MatcherError::TooCostly(String::new())))
    }

    /// Whether every one of `wanted` is `*`, exact, or a URL pattern someone holds.
    fn all_compiled(&self, wanted: &[Selector]) -> bool {
        let live = self.live.lock();
        wanted.iter().all(|(match_type, pattern)| {
            *match_type == MatchType::Exact
                || pattern == "*"
                || live
                    .get(&(*match_type, pattern.clone()))
                    .is_some_and(|weak| weak.strong_count() > 0)
        })
    }

    /// The matcher for `pattern` read as `match_type` (see [`Matchers::compile`]).
    fn get(&self, match_type: MatchType, pattern: &str) -> Result<Arc<Matcher>, MatcherError> {
        Self::check(pattern)?;
        let key = (match_type, pattern.to_owned());
        if let Some(matcher) = self.live.lock().get(&key).and_then(Weak::upgrade) {
            return Ok(matcher);
        }
        let compiled = match match_type {
            _ if pattern == "*" => Compiled::Any,
            MatchType::Exact => Compiled::Exact,
            MatchType::UrlPattern => self.compile_pattern(pattern)?,
            MatchType::UriTemplate => self.compile_template(pattern)?,
        };
        let weight = match &compiled {
            Compiled::Pattern { pattern, .. } => expression_bytes(pattern),
            // What its expression holds, as for a URL pattern's (not the template's
            // text: `{+a}` is a few bytes that expand to a costly expression).
            Compiled::Template { regex, .. } => regex.memory_usage(),
            _ => 0,
        };
        let matcher = Arc::new(Matcher {
            match_type,
            pattern: pattern.to_owned(),
            compiled,
            weight,
            last: Mutex::new(None),
        });
        let mut live = self.live.lock();
        // Forget the matchers nobody holds any more, now and then.
        if live.len() >= 1024 && live.len().is_power_of_two() {
            live.retain(|_, weak| weak.strong_count() > 0);
        }
        live.insert(key, Arc::downgrade(&matcher));
        Ok(matcher)
    }

    /// A 0.x selector: a URI template, or (not one) a text compared exactly.
    fn compile_template(&self, pattern: &str) -> Result<Compiled, MatcherError> {
        let Some(regex) = uri_template::to_regex(pattern) else {
            return Ok(Compiled::Exact);
        };
        let regex = BoundedRegex::build(&regex, false)
            .map_err(|()| MatcherError::TooCostly(pattern.into()))?;
        Ok(Compiled::Template {
            regex,
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            answers: Arc::clone(&self.answers),
        })
    }

    fn compile_pattern(&self, pattern: &str) -> Result<Compiled, MatcherError> {
        let not_a_pattern = |e: urlpattern::Error| {
            if Budget::exceeded() {
                return MatcherError::TooCostly(pattern.into());
            }
            MatcherError::NotAPattern {
                pattern: pattern.into(),
                why: e.to_string(),
            }
        };
        let init = UrlPatternInit::parse_constructor_string::<BoundedRegex>(
            pattern,
            Some(self.base.clone()),
        )
        .map_err(not_a_pattern)?;
        // `ignore_case` stays off, as Mercure requires.
        let options = UrlPatternOptions::default();
        let compiled = UrlPattern::<BoundedRegex>::parse(init, options).map_err(not_a_pattern)?;
        Ok(Compiled::Pattern {
            pattern: Box::new(compiled),
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            answers: Arc::clone(&self.answers),
            base: self.base.clone(),
        })
    }
}

/// Whether `value` has no C0 or C1 control character, no DEL, no format character
/// (Unicode `Cf`) and no line or paragraph separator (U+2028, U+2029: a client that
/// splits lines the way many languages do would see a new field): what the hub allows
/// in topics, matchers, ids and types.
pub fn is_clean(value: &str) -> bool {
    let bad = |c: char| {
        c.is_control()
            || matches!(
                c.general_category(),
                GeneralCategory::Format
                    | GeneralCategory::LineSeparator
                    | GeneralCategory::ParagraphSeparator
            )
    };
    !value.chars().any(bad)
}

// ---- the answers cache ----

type Answers = quick_cache::sync::Cache<AnswerKey, bool, AnswerWeight>;

/// A remembered answer's key: the matcher's id and the topic.
#[derive(PartialEq, Eq)]
struct AnswerKey {
    matcher: u64,
    topic: Box<str>,
}

impl AnswerKey {
    fn new(matcher: u64, topic: &str) -> Self {
        Self {
            matcher,
            topic: topic.into(),
        }
    }
}

impl Hash for AnswerKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        AnswerRef {
            matcher: self.matcher,
            topic: &self.topic,
        }
        .hash(state);
    }
}

/// A lookup that borrows the topic (no allocation per lookup).
#[derive(Hash)]
struct AnswerRef<'a> {
    matcher: u64,
    topic: &'a str,
}

impl quick_cache::Equivalent<AnswerKey> for AnswerRef<'_> {
    fn equivalent(&self, key: &AnswerKey) -> bool {
        self.matcher == key.matcher && self.topic == &*key.topic
    }
}

/// An answer weighs its topic and the entry around it.
#[derive(Clone)]
struct AnswerWeight;

impl quick_cache::Weighter<AnswerKey, bool> for AnswerWeight {
    fn weight(&self, key: &AnswerKey, _: &bool) -> u64 {
        (key.topic.len() + 64) as u64
    }
}

// ---- bounded regular expressions ----

thread_local! {
    /// Bytes the request being compiled on this thread may still compile to.
    static REMAINING: Cell<Option<usize>> = const { Cell::new(None) };
    /// Whether one of its expressions was refused for its size.
    static EXCEEDED: Cell<bool> = const { Cell::new(false) };
}

/// One request's compile budget, on this thread while it lives.
struct Budget;

impl Budget {
    fn start(bytes: usize) -> Self {
        REMAINING.set(Some(bytes));
        EXCEEDED.set(false);
        Budget
    }

    /// Takes `bytes` from the budget; `false` (and nothing taken) past it.
    fn charge(bytes: usize) -> bool {
        match REMAINING.get() {
            None => true, // not compiling for a request (tests)
            Some(left) if left >= bytes => {
                REMAINING.set(Some(left - bytes));
                true
            }
            Some(_) => {
                EXCEEDED.set(true);
                false
            }
        }
    }

    fn refuse() {
        EXCEEDED.set(true);
    }

    fn exceeded() -> bool {
        EXCEEDED.get()
    }
}

impl Drop for Budget {
    fn drop(&mut self) {
        REMAINING.set(None);
        EXCEEDED.set(false);
    }
}

/// Compiled expressions by (text, ignore case), shared while anyone holds them.
type Expressions = Mutex<HashMap<(String, bool), Weak<meta::Regex>>>;
static EXPRESSIONS: LazyLock<Expressions> = LazyLock::new(Mutex::default);

/// A URL pattern's regular expression, compiled with bounded size (see the module's
/// doc), for the `urlpattern` crate.
#[derive(Debug)]
pub struct BoundedRegex {
    regex: Arc<meta::Regex>,
    text: String,
}

impl BoundedRegex {
    fn build(text: &str, ignore_case: bool) -> Result<Arc<meta::Regex>, ()> {
        let key = (text.to_owned(), ignore_case);
        if let Some(regex) = EXPRESSIONS.lock().get(&key).and_then(Weak::upgrade) {
            return Ok(regex);
        }
        let syntax = regex_automata::util::syntax::Config::new().case_insensitive(ignore_case);
        // Small automata searched without a lazy DFA (whose cache, per thread, would be
        // most of their size): topics are short, and answers are remembered.
        let config = meta::Config::new()
            .nfa_size_limit(Some(NFA_BYTES))
            .onepass_size_limit(Some(NFA_BYTES))
            .hybrid(false)
            .dfa(false);
        let built = meta::Builder::new()
            .syntax(syntax)
            .configure(config)
            .build(&ascii_classes(text));
        let regex = match built {
            Ok(regex) => regex,
            Err(e) => {
                if e.size_limit().is_some() {
                    Budget::refuse();
                }
                return Err(());
            }
        };
        // What it holds, and the cache a search makes.
        // A search cache is made for each thread that searches (the runtime's workers,
        // a blocking thread): charge one for each.
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) + 1;
        let cache = regex.create_cache().memory_usage() * threads;
        if !Budget::charge(regex.memory_usage() + cache) {
            return Err(());
        }
        let regex = Arc::new(regex);
        let mut expressions = EXPRESSIONS.lock();
        if expressions.len() >= 1024 && expressions.len().is_power_of_two() {
            expressions.retain(|_, weak| weak.strong_count() > 0);
        }
        expressions.insert(key, Arc::downgrade(&regex));
        Ok(regex)
    }
}

/// `text` with `\d`, `\w` and their negations made ASCII, as URL patterns read them
/// (JavaScript's classes; Mercure's hub, in Go, reads them the same way), where this
/// engine's would be Unicode (and a hundred times larger).
fn ascii_classes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('d') => out.push_str("[0-9]"),
            Some('D') => out.push_str("[^0-9]"),
            Some('w') => out.push_str("[0-9A-Za-z_]"),
            Some('W') => out.push_str("[^0-9A-Za-z_]"),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

impl urlpattern::regexp::RegExp for BoundedRegex {
    fn syntax() -> RegexSyntax {
        RegexSyntax::Rust
    }

    fn parse(pattern: &str, flags: &str, _force_eval: bool) -> Result<Self, ()> {
        let regex = Self::build(pattern, flags.contains('i'))?;
        Ok(Self {
            regex,
            text: pattern.to_owned(),
        })
    }

    fn matches<'a>(&self, text: &'a str) -> Option<Vec<Option<&'a str>>> {
        let mut captures = self.regex.create_captures();
        self.regex.captures(text, &mut captures);
        if !captures.is_match() {
            return None;
        }
        let groups = (1..captures.group_len())
            .map(|i| {
                captures
                    .get_group(i)
                    .and_then(|span| text.get(span.range()))
            })
            .collect();
        Some(groups)
    }

    fn pattern_string(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use urlpattern::UrlPatternMatchInput;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// Matchers with the default bounds, but time enough to compile: these tests are
    /// about the byte budget, and a debug build sharing two cores with the other tests
    /// can take longer than [`COMPILE_TIME`] over fifty patterns.
    fn matchers() -> Result<Matchers, url::ParseError> {
        let limits = MatchLimits {
            compile_time: Duration::from_secs(60),
            ..MatchLimits::default()
        };
        Ok(Matchers::new(
            Url::parse("https://hub.example/.well-known/mercure")?,
            limits,
        ))
    }

    fn one(matchers: &Matchers, t: MatchType, pattern: &str) -> Result<Arc<Matcher>, MatcherError> {
        let mut compiled = matchers.compile(&[(t, pattern.to_owned())])?;
        compiled.pop().ok_or(MatcherError::TooLong)
    }

    #[test]
    fn a_pathological_pattern_still_matches_correctly() -> TestResult {
        // With a backtracking engine, `(a+)+b` against many a's and no `b` takes
        // exponential time; this engine reads the topic once (bench measures it).
        let matcher = one(&matchers()?, MatchType::UrlPattern, "/:x((?:a+)+b)")?;
        assert!(!matcher.matches(&format!("/{}!", "a".repeat(5000))));
        assert!(matcher.matches(&format!("/{}b", "a".repeat(5000))));
        Ok(())
    }

    #[test]
    fn a_pattern_that_compiles_to_megabytes_is_refused() -> TestResult {
        let matchers = matchers()?;
        for costly in [
            r"/pJ/:x(\p{L}{100})",
            r"/pJ/:x(.{2000})",
            r"/:x((?:(?:a|b|c){50}){50})",
        ] {
            let error = one(&matchers, MatchType::UrlPattern, costly).err();
            assert!(
                matches!(error, Some(MatcherError::TooCostly(_))),
                "{costly}: {error:?}"
            );
        }
        // ASCII classes, as URL patterns read them, are small.
        one(&matchers, MatchType::UrlPattern, r"/pJ/:x(\w{100})")?;
        // Fifty ordinary patterns fit one request's budget.
        let wanted: Vec<_> = (0..50)
            .map(|i| (MatchType::UrlPattern, format!("/p{i}/:id")))
            .collect();
        assert_eq!(matchers.compile(&wanted)?.len(), 50);
        Ok(())
    }

    #[test]
    fn digit_and_word_classes_are_ascii_as_in_url_patterns() -> TestResult {
        let matchers = matchers()?;
        let digits = one(&matchers, MatchType::UrlPattern, r"/books/:id(\d+)")?;
        assert!(digits.matches("/books/42"));
        assert!(
            !digits.matches("/books/\u{0664}\u{0662}"),
            "Arabic-Indic digits"
        );
        let words = one(&matchers, MatchType::UrlPattern, r"/w/:x(\w+)/:y([\W]+)")?;
        assert!(words.matches("/w/a_1/--"));
        assert!(!words.matches("/w/\u{e9}/--"));
        // An escaped backslash is left alone.
        assert_eq!(ascii_classes(r"a\\d\d[\w-]"), r"a\\d[0-9][[0-9A-Za-z_]-]");
        Ok(())
    }

    #[test]
    fn one_matcher_per_pattern_is_shared() -> TestResult {
        let matchers = matchers()?;
        let a = one(&matchers, MatchType::UrlPattern, "/books/:id")?;
        let b = one(&matchers, MatchType::UrlPattern, "/books/:id")?;
        assert!(Arc::ptr_eq(&a, &b));
        assert!(a.matches("/books/1") && b.matches("/books/1"));
        // Exact, with the same text, is another matcher.
        let exact = one(&matchers, MatchType::Exact, "/books/:id")?;
        assert!(!Arc::ptr_eq(&exact, &a));
        assert!(exact.matches("/books/:id") && !exact.matches("/books/1"));
        Ok(())
    }

    #[test]
    fn what_takes_an_expression_is_told_quickly_only_once_remembered() -> TestResult {
        let matchers = matchers()?;
        let selection = Selection::new(vec![
            one(&matchers, MatchType::UrlPattern, r"/books/:id(\d+)")?,
            one(&matchers, MatchType::UrlPattern, "/authors/:id")?,
            one(&matchers, MatchType::Exact, "/x")?,
        ]);
        // Exact, whole segments, literal parts: told without an expression.
        assert_eq!(selection.quick_any(&["/x"]), Some(true));
        assert_eq!(selection.quick_any(&["/authors/1"]), Some(true));
        assert_eq!(selection.quick_any(&["/other/1"]), Some(false));
        // `/books/12` passes the literal part: only the expression can tell.
        assert_eq!(selection.quick_any(&["/books/12"]), None);
        assert_eq!(selection.quick_any(&["/other/1", "/x"]), Some(true));
        assert!(selection.matches_any(&["/books/12"]));
        assert!(!selection.matches_any(&["/books/twelve"]));
        // Now remembered.
        assert_eq!(selection.quick_any(&["/books/12"]), Some(true));
        assert_eq!(selection.quick_any(&["/books/twelve"]), Some(false));
        Ok(())
    }

    #[test]
    fn only_answers_of_expressions_are_remembered() -> TestResult {
        let matchers = matchers()?;
        let segments = one(&matchers, MatchType::UrlPattern, "/books/:id")?;
        let expression = one(&matchers, MatchType::UrlPattern, r"/books/:id(\d+)")?;
        for n in 0..10 {
            assert!(segments.matches(&format!("/books/{n}")));
        }
        assert_eq!(matchers.answers.len(), 0);
        assert!(expression.matches("/books/1"));
        assert_eq!(matchers.answers.len(), 1);
        Ok(())
    }

    #[test]
    fn the_answers_cache_is_bounded_in_bytes() -> TestResult {
        let limits = MatchLimits {
            cache_bytes: 64 * 1024,
            ..MatchLimits::default()
        };
        let matchers = Matchers::new(Url::parse("https://hub.example/")?, limits);
        // Patterns with expressions whose literal parts every topic passes: each
        // answer is remembered.
        let wanted: Vec<_> = (0..50)
            .map(|i| (MatchType::UrlPattern, format!(r"/t/:n(\d+)/:x{i}(x+)")))
            .collect();
        let compiled = matchers.compile(&wanted)?;
        for n in 0..100 {
            let topic = format!("/t/{n}/{}", "x".repeat(1000));
            assert!(compiled.iter().all(|m| m.matches(&topic)));
        }
        assert!(
            matchers.answers.weight() <= 64 * 1024,
            "{}",
            matchers.answers.weight()
        );
        Ok(())
    }

    #[test]
    fn our_test_agrees_with_the_crates() -> TestResult {
        let matchers = matchers()?;
        let patterns = [
            "/books/:id",
            "https://example.com/books/:id.json",
            "/books/:id?",
            "/a/*",
            "/",
            "*://*/x",
            "https://*.example.com/:p",
            r"/n/:id(\d+)/end",
            "/literal",
            "https://u:p@example.com:8443/x?q=1#h",
            "/q/:id?a=*",
            "/h#:frag",
            "http{s}?://example.com/:x",
        ];
        let topics = [
            "/books/1",
            "/books/",
            "/books",
            "https://example.com/books/1.json",
            "https://EXAMPLE.com/books/2.json",
            "https://example.com/books/1.jso",
            "/a/b/c",
            "/x/../a/z",
            "/a",
            "http://other.example/x",
            "https://a.example.com/q",
            "/n/12/end",
            "/n/1x/end",
            "/%6Citeral",
            "/literal",
            "urn:uuid:1",
            "",
            "https://u:p@example.com:8443/x?q=1#h",
            "https://example.com:8443/x?q=1#h",
            "/q/7?a=b",
            "/q/7",
            "/h#top",
            "/h",
            "http://example.com/z",
            "https://example.com/z",
        ];
        for pattern in patterns {
            let compiled = one(&matchers, MatchType::UrlPattern, pattern)?;
            let Compiled::Pattern {
                pattern: p, base, ..
            } = &compiled.compiled
            else {
                return Err("not a pattern".into());
            };
            for topic in topics {
                let Ok(url) = base.join(topic) else { continue };
                let full = p
                    .test(UrlPatternMatchInput::Url(url.clone()))
                    .unwrap_or(false);
                assert_eq!(url_matches(p, &url), full, "{pattern} against {topic}");
                assert_eq!(compiled.matches(topic), full, "{pattern} against {topic}");
            }
        }
        Ok(())
    }

    #[test]
    fn url_patterns_are_case_sensitive_but_hosts_are_not() -> TestResult {
        let matchers = matchers()?;
        let matcher = one(
            &matchers,
            MatchType::UrlPattern,
            "https://example.com/Books/:id",
        )?;
        assert!(matcher.matches("https://example.com/Books/1"));
        assert!(!matcher.matches("https://example.com/books/1"));
        assert!(
            matcher.matches("https://EXAMPLE.com/Books/1"),
            "hosts are canonicalized"
        );
        Ok(())
    }

    #[test]
    fn values_with_control_format_or_separator_characters_are_refused() {
        let bad = [
            "a\u{0}",
            "a\u{1f}",
            "a\u{7f}",
            "a\u{80}",
            "a\u{85}",
            "a\u{9f}",
            "a\u{200b}",
            "a\u{feff}",
            "a\u{2066}",
            "a\u{2028}b",
            "a\u{2029}b",
        ];
        for value in bad {
            assert!(!is_clean(value), "{value:?}");
        }
        for value in ["plain", "https://example.com/ä/:id", "日本", "a b"] {
            assert!(is_clean(value), "{value:?}");
        }
    }
}
