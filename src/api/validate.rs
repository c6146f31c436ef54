//! Small field validators shared by the resource handlers.

use super::error::{ApiError, ApiResult};

pub fn required_text(field: &str, value: &str, max: usize) -> ApiResult<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(ApiError::invalid(field, "must not be empty"));
    }
    if v.chars().count() > max {
        return Err(ApiError::invalid(field, format!("must be at most {max} characters")));
    }
    Ok(v.to_owned())
}

/// Empty text counts as absent.
pub fn optional_text(field: &str, value: &str, max: usize) -> ApiResult<Option<String>> {
    let v = value.trim();
    if v.is_empty() {
        return Ok(None);
    }
    required_text(field, v, max).map(Some)
}

pub fn email(field: &str, value: &str) -> ApiResult<Option<String>> {
    let v = value.trim();
    if v.is_empty() {
        return Ok(None);
    }
    let ok = v.len() <= 254
        && !v.chars().any(char::is_whitespace)
        && v.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if ok { Ok(Some(v.to_owned())) } else { Err(ApiError::invalid(field, "must be a valid email address")) }
}

/// Trims, drops duplicates, and bounds count and length.
pub fn tags(field: &str, tags: Vec<String>) -> ApiResult<Vec<String>> {
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags {
        let t = tag.trim();
        if t.is_empty() {
            return Err(ApiError::invalid(field, "tags must not be empty"));
        }
        if t.chars().count() > 64 {
            return Err(ApiError::invalid(field, "tags must be at most 64 characters"));
        }
        if !out.iter().any(|o| o == t) {
            out.push(t.to_owned());
        }
    }
    if out.len() > 50 {
        return Err(ApiError::invalid(field, "at most 50 tags"));
    }
    Ok(out)
}
