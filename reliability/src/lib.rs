//! The reliability suite lives in `tests/`; this crate has no code of its own.
//! See RELIABILITY.md at the root for what is tried and what it showed.
