//! SOTI Connect adapter (being written).
#![forbid(unsafe_code)]
