//! Names that users choose and others see (chat display names, notify users, a JWT's
//! `sub`): one rule for every example, so that a name shows as what it is.
//!
//! - NFC first (the same name typed two ways is one name), then trimmed;
//! - 1 to `max` characters;
//! - only characters that render: letters, marks, numbers, punctuation, symbols and
//!   spaces. No control (Cc), format (Cf: zero-width spaces and joiners, the soft
//!   hyphen, text-direction controls, tag characters), private-use, unassigned or
//!   line/paragraph-separator characters, and none of those that show nothing although
//!   their category says otherwise (Hangul fillers, the Braille blank, the combining
//!   grapheme joiner, Khmer inherent vowels, Mongolian variation selectors). An emoji
//!   sequence joined by U+200D (a family) is refused with the other format characters;
//! - at least one letter, number, punctuation or symbol: not spaces, marks or
//!   variation selectors alone.
//!
//! ```
//! use sse_shared::names::{NameError, display_name};
//!
//! assert_eq!(display_name("  Zoë ", 32), Ok("Zoë".to_owned()));
//! // A right-to-left override would make "alice" show as someone else's name.
//! assert_eq!(display_name("\u{202e}ecila", 32), Err(NameError::Hidden));
//! assert_eq!(display_name("\u{301}", 32), Err(NameError::Blank)); // a mark alone
//! ```

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, GeneralCategoryGroup, UnicodeGeneralCategory};

/// Why a name was refused; the message completes "The name ...".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Nothing but white space.
    #[error("is empty")]
    Empty,
    /// Longer than allowed.
    #[error("is longer than {0} characters")]
    TooLong(usize),
    /// Holds a character that does not render, or changes how others do.
    #[error("has invisible, control or text-direction characters")]
    Hidden,
    /// Nothing in it shows: spaces, marks or blank characters only.
    #[error("shows nothing: it needs a letter, number, punctuation or symbol")]
    Blank,
}

/// The name in NFC, trimmed, if it is 1 to `max_chars` characters that all render.
pub fn display_name(raw: &str, max_chars: usize) -> Result<String, NameError> {
    let normalized: String = raw.nfc().collect();
    let name = normalized.trim();
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
    if !name.chars().any(is_visible) {
        return Err(NameError::Blank);
    }
    Ok(name.to_owned())
}

/// A character that renders as nothing, or changes how the text around it does.
fn is_hidden(c: char) -> bool {
    use GeneralCategory::*;
    matches!(
        c.general_category(),
        Control | Format | Surrogate | PrivateUse | Unassigned | LineSeparator | ParagraphSeparator
    ) || matches!(
        c,
        '\u{115f}' | '\u{1160}' | '\u{3164}' | '\u{ffa0}' // Hangul fillers (letters)
        | '\u{2800}'                                      // Braille pattern blank (a symbol)
        | '\u{034f}'                                      // combining grapheme joiner
        | '\u{17b4}' | '\u{17b5}'                         // Khmer inherent vowels
        | '\u{180b}'..='\u{180f}'
    ) // Mongolian variation selectors
}

/// A character that shows by itself (not a space, a mark or a variation selector).
fn is_visible(c: char) -> bool {
    use GeneralCategoryGroup::*;
    matches!(
        c.general_category_group(),
        Letter | Number | Punctuation | Symbol
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_render_and_names_that_hide() {
        use NameError::*;
        let table: &[(&str, Result<&str, NameError>)] = &[
            ("  Zoë 🦀 ", Ok("Zoë 🦀")),
            ("alice", Ok("alice")),
            ("Mary Ann", Ok("Mary Ann")),
            ("李小龍", Ok("李小龍")),
            ("محمد", Ok("محمد")),
            ("❤\u{fe0f}", Ok("❤\u{fe0f}")), // emoji presentation: kept
            ("Zoe\u{308}", Ok("Zo\u{eb}")), // NFC: ë as one character
            ("(-_-)", Ok("(-_-)")),
            (" \t", Err(Empty)),
            ("\u{3000}", Err(Empty)),    // ideographic space
            ("a\u{202e}b", Err(Hidden)), // right-to-left override
            ("a\u{2066}b", Err(Hidden)), // isolate
            ("a\nb", Err(Hidden)),
            ("\u{200b}", Err(Hidden)),         // zero-width space
            ("\u{2060}", Err(Hidden)),         // word joiner
            ("\u{feff}", Err(Hidden)),         // zero-width no-break space
            ("\u{ad}", Err(Hidden)),           // soft hyphen
            ("\u{3164}", Err(Hidden)),         // Hangul filler
            ("\u{115f}\u{1160}", Err(Hidden)), // Hangul choseong/jungseong fillers
            ("\u{ffa0}", Err(Hidden)),         // halfwidth Hangul filler
            ("\u{2800}", Err(Hidden)),         // Braille blank
            ("\u{180e}", Err(Hidden)),         // Mongolian vowel separator
            ("a\u{180b}", Err(Hidden)),
            ("a\u{34f}", Err(Hidden)), // combining grapheme joiner
            ("alice\u{e0041}\u{e0042}", Err(Hidden)), // tag characters: "alice" to the eye
            ("al\u{200d}ice", Err(Hidden)), // zero-width joiner
            ("\u{e000}", Err(Hidden)), // private use
            ("a\u{2028}b", Err(Hidden)), // line separator
            ("\u{378}", Err(Hidden)),  // unassigned
            ("\u{fe0f}", Err(Blank)),  // a variation selector alone
            ("\u{fe0f}\u{fe0e}\u{e0100}", Err(Blank)),
            ("\u{301}\u{301}", Err(Blank)), // combining marks alone
        ];
        for (raw, expected) in table {
            let got = display_name(raw, 32);
            assert_eq!(got.as_deref(), expected.as_ref().map(|s| *s), "{raw:?}");
        }
        assert_eq!(
            display_name(&"a".repeat(33), 32),
            Err(NameError::TooLong(32))
        );
        // Counted after NFC: 32 decomposed "é" are 32 characters, not 64.
        assert!(display_name(&"e\u{301}".repeat(32), 32).is_ok());
    }
}
