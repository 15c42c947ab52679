//! RFC 6570 URI templates as Mercure 0.x matched topics with them (`--protocol-compat
//! 8`): a template becomes a regular expression that a topic must match whole. Each
//! expression matches what its operator could expand to, whatever the values: `{id}`
//! any run of unreserved characters, commas and percent-encoded octets (so not `/`),
//! `{+path}` and `{#frag}` reserved characters too, `{/a,b}` up to two `/`-separated
//! segments, `{/a*}` any number, `{?q}` a query of any `name=value` pairs; and an
//! expression may be absent (it expands to nothing when its variables are undefined).
//! Prefix modifiers (`{id:3}`) are parsed and do not bound the length, as in the Go
//! library Mercure 0.x used. A text that is not a template is none: the caller compares
//! it exactly.

use std::fmt::Write;

/// `template` as a regular expression (anchored at both ends), or `None` when it is
/// not an RFC 6570 template.
pub fn to_regex(template: &str) -> Option<String> {
    let mut regex = String::from("^");
    let mut rest = template;
    while !rest.is_empty() {
        match rest.find(['{', '}']) {
            Some(0) if rest.starts_with('}') => return None,
            Some(0) => {
                let end = rest.find('}')?;
                expression(&rest[1..end], &mut regex)?;
                rest = &rest[end + 1..];
            }
            found => {
                let end = found.unwrap_or(rest.len());
                literals(&rest[..end], &mut regex)?;
                rest = &rest[end..];
            }
        }
    }
    regex.push('$');
    Some(regex)
}

/// Characters a template may hold outside expressions (RFC 6570 §2.1, with the
/// erratum that allows `'`): the literal text, quoted, in a group.
fn literals(text: &str, regex: &mut String) -> Option<()> {
    let mut bytes = text.bytes().enumerate();
    while let Some((i, b)) = bytes.next() {
        let allowed = match b {
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                if !hex.bytes().all(|h| h.is_ascii_hexdigit()) {
                    return None;
                }
                bytes.next();
                bytes.next();
                true
            }
            0x80.. => true, // ucschar and iprivate: any non-ASCII text
            b'!' | b'#' | b'$' | b'&'..=b';' | b'=' | b'?'..=b'[' | b']' | b'_' => true,
            b'a'..=b'z' | b'~' => true,
            _ => false,
        };
        if !allowed {
            return None;
        }
    }
    let _ = write!(regex, "(?:{})", regex_syntax::escape(text));
    Some(())
}

/// What an operator's expansion starts with and separates values with, whether its
/// values are named (`name=value`), and whether they may hold reserved characters.
struct Operator {
    first: &'static str,
    separator: &'static str,
    named: bool,
    reserved: bool,
}

fn operator(c: char) -> Option<Operator> {
    let op = |first, separator, named, reserved| Operator {
        first,
        separator,
        named,
        reserved,
    };
    Some(match c {
        '+' => op("", ",", false, true),
        '#' => op("#", ",", false, true),
        '.' => op(".", ".", false, false),
        '/' => op("/", "/", false, false),
        ';' => op(";", ";", true, false),
        '?' => op("?", "&", true, false),
        '&' => op("&", "&", true, false),
        _ => return None,
    })
}

/// One `{...}`: an optional operator, then variables (`name`, `name*`, `name:N`)
/// separated by commas.
fn expression(body: &str, regex: &mut String) -> Option<()> {
    let first = body.chars().next()?;
    let (op, list) = match operator(first) {
        Some(op) => (op, &body[1..]),
        // Reserved for future operators (RFC 6570 §2.2): not a template today.
        None if "=,!@|".contains(first) => return None,
        None => (op_simple(), body),
    };
    let mut explode = false;
    let mut count = 0usize;
    for spec in list.split(',') {
        let (name, exploded) = variable(spec)?;
        if !valid_name(name) {
            return None;
        }
        explode |= exploded;
        count += 1;
    }
    let class = value_class(op.reserved, op.named || explode);
    let _ = write!(regex, "(?:{}(", regex_syntax::escape(op.first));
    regex.push_str(&class);
    if count > 1 || explode {
        let repeat = match explode {
            true => "*".to_owned(),
            false => format!("{{0,{}}}", count - 1),
        };
        let more = value_class(op.reserved, op.named || explode);
        let separator = regex_syntax::escape(op.separator);
        let _ = write!(regex, "(?:{separator}{more}){repeat}");
    }
    regex.push_str("))?");
    Some(())
}

fn op_simple() -> Operator {
    Operator {
        first: "",
        separator: ",",
        named: false,
        reserved: false,
    }
}

/// A variable's name and whether it explodes (`*`); a prefix (`:N`, 1 to 9999, no
/// leading zero) is checked and dropped.
fn variable(spec: &str) -> Option<(&str, bool)> {
    if let Some(name) = spec.strip_suffix('*') {
        return Some((name, true));
    }
    match spec.split_once(':') {
        None => Some((spec, false)),
        Some((name, length)) => {
            let digits = !length.is_empty() && length.len() <= 4;
            let number = digits && length.bytes().all(|b| b.is_ascii_digit());
            (number && !length.starts_with('0')).then_some((name, false))
        }
    }
}

/// `varname = varchar *( ["."] varchar )`, a varchar being ALPHA, DIGIT, `_` or a
/// percent-encoded octet.
fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let mut i = 0;
    let mut after_dot = true; // a name may not start with `.`
    while i < bytes.len() {
        match bytes[i] {
            b'.' if !after_dot => after_dot = true,
            b'%' if bytes
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) =>
            {
                i += 2;
                after_dot = false;
            }
            b if b.is_ascii_alphanumeric() || b == b'_' => after_dot = false,
            _ => return false,
        }
        i += 1;
    }
    !after_dot
}

/// What one value may expand to: unreserved characters and percent-encoded octets, and
/// the reserved ones for `+` and `#`; otherwise commas (a list's values) and, for named
/// or exploded values, `=` (`name=value`).
fn value_class(reserved: bool, named: bool) -> String {
    const UNRESERVED: &str = r"\x2D\x2E0-9A-Z\x5Fa-z\x7E";
    const RESERVED: &str = r"\x21\x23\x24\x26-\x2C\x2F\x3A\x3B\x3D\x3F\x40\x5B\x5D";
    let extra = match (reserved, named) {
        (true, _) => RESERVED,
        (false, true) => r"\x2C\x3D",
        (false, false) => r"\x2C",
    };
    format!("(?:(?:[{extra}{UNRESERVED}]|%[0-9A-Fa-f][0-9A-Fa-f])*)")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(template: &str, topic: &str) -> bool {
        let regex = to_regex(template).unwrap_or_default();
        regex_automata::meta::Regex::new(&regex).is_ok_and(|r| r.is_match(topic))
    }

    #[test]
    fn simple_variables_match_one_segment() {
        let books = "https://example.com/books/{id}";
        assert!(matches(books, "https://example.com/books/1"));
        assert!(matches(books, "https://example.com/books/a%20b,c"));
        assert!(matches(books, "https://example.com/books/")); // an undefined value
        assert!(!matches(books, "https://example.com/books/1/pages/2"));
        assert!(!matches(books, "https://example.com/books/1?x"));
        assert!(!matches(books, "https://example_com/books/1")); // `.` is literal
    }

    #[test]
    fn operators_match_what_they_expand_to() {
        let cases = [
            (
                "https://example.com/files/{+path}",
                "https://example.com/files/a/b?c",
                true,
            ),
            (
                "https://example.com/files{/path*}",
                "https://example.com/files/a/b/c",
                true,
            ),
            (
                "https://example.com/files{/a,b}",
                "https://example.com/files/a/b",
                true,
            ),
            (
                "https://example.com/files{/a,b}",
                "https://example.com/files/a/b/c",
                false,
            ),
            (
                "https://example.com/search{?q,lang}",
                "https://example.com/search?q=x&lang=en",
                true,
            ),
            (
                "https://example.com/page{#frag}",
                "https://example.com/page#a/b",
                true,
            ),
            (
                "https://example.com/{x}.json",
                "https://example.com/abc.json",
                true,
            ),
            ("urn:{type}:{id:3}", "urn:book:1234", true),
        ];
        for (template, topic, expected) in cases {
            assert_eq!(matches(template, topic), expected, "{template} ~ {topic}");
        }
    }

    #[test]
    fn what_is_not_a_template_is_compared_exactly() {
        for text in [
            "https://example.com/{",
            "https://example.com/}",
            "{}",
            "{=x}",
            "{a b}",
            "{.a.}",
            "{a:0}",
            "{a:12345}",
            "a b{x}",
            "{x}%zz",
        ] {
            assert_eq!(to_regex(text), None, "{text}");
        }
        assert!(to_regex("https://example.com/caf%C3%A9/{x}").is_some());
    }
}
