//! Display names that users choose: trimmed, 1 to `max` characters, and free of control
//! and text-direction characters, which could hide or reorder what others see.

/// Why a name was refused; the message completes "The name ...".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Nothing but white space.
    #[error("is empty")]
    Empty,
    /// Longer than allowed.
    #[error("is longer than {0} characters")]
    TooLong(usize),
    /// Holds a control or bidi-override character.
    #[error("has control or text-direction characters")]
    Hidden,
}

/// The trimmed name, if it is 1 to `max_chars` characters with nothing hidden.
pub fn display_name(raw: &str, max_chars: usize) -> Result<String, NameError> {
    let name = raw.trim();
    let chars = name.chars().count();
    if chars == 0 {
        return Err(NameError::Empty);
    }
    if chars > max_chars {
        return Err(NameError::TooLong(max_chars));
    }
    if name.chars().any(is_hidden) {
        return Err(NameError::Hidden);
    }
    Ok(name.to_owned())
}

fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200e}' | '\u{200f}' | '\u{061c}'      // directional marks
            | '\u{202a}'..='\u{202e}'                   // embeddings and overrides
            | '\u{2066}'..='\u{2069}') // isolates
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(display_name("  Zoë 🦀 ", 32), Ok("Zoë 🦀".into()));
        assert_eq!(display_name(" \t", 32), Err(NameError::Empty));
        assert_eq!(
            display_name(&"a".repeat(33), 32),
            Err(NameError::TooLong(32))
        );
        assert_eq!(display_name("a\u{202e}b", 32), Err(NameError::Hidden));
        assert_eq!(display_name("a\nb", 32), Err(NameError::Hidden));
    }
}
