//! Tests for this resource.
