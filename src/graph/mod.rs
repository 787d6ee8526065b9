//! Graph: to be written.
