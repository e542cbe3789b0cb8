//! Parsers for `/proc` text (`maps`, `status`, …): pure functions over the text.
