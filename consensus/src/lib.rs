//! Varde consensus (in progress).
