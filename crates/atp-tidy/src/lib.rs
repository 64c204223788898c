//! Tidy checks live in `tests/`.
