//! Shared fixtures for Mandate's integration tests. Not published.
