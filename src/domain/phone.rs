//! E.164 phone numbers. Every *possible* E.164 number is accepted (the spec's own
//! examples use fictional +1555 numbers); strict validity is kept as information.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phone {
    e164: String,
    valid: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum InvalidPhone {
    #[error("must be an E.164 phone number starting with '+', e.g. +15551234567")]
    NotE164,
    #[error("is not a possible phone number for its country code")]
    NotPossible,
}

impl Phone {
    pub fn parse(input: &str) -> Result<Phone, InvalidPhone> {
        let trimmed = input.trim();
        if !trimmed.starts_with('+') || trimmed.len() > 20 {
            return Err(InvalidPhone::NotE164);
        }
        let digits: String = trimmed[1..].chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.')).collect();
        if digits.is_empty()
            || digits.len() > 15
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || digits.starts_with('0')
        {
            return Err(InvalidPhone::NotE164);
        }
        let candidate = format!("+{digits}");
        if !phonenumber::is_viable(&candidate) {
            return Err(InvalidPhone::NotPossible);
        }
        let number = phonenumber::parse(None, &candidate).map_err(|_| InvalidPhone::NotPossible)?;
        let e164 = number.format().mode(phonenumber::Mode::E164).to_string();
        let valid = phonenumber::is_valid(&number);
        Ok(Phone { e164, valid })
    }

    /// For values read back from our own database.
    pub fn from_trusted(e164: String, valid: bool) -> Phone {
        Phone { e164, valid }
    }

    pub fn as_str(&self) -> &str {
        &self.e164
    }

    /// Whether the number is valid for its region's numbering plan (information only).
    pub fn is_valid(&self) -> bool {
        self.valid
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.e164)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_fictional_and_real_numbers() {
        let p = Phone::parse("+15551234567").unwrap();
        assert_eq!(p.as_str(), "+15551234567");
        assert!(!p.is_valid());
        let p = Phone::parse("+14155552671").unwrap();
        assert_eq!(p.as_str(), "+14155552671");
        let p = Phone::parse("+44 20 7946 0958").unwrap();
        assert_eq!(p.as_str(), "+442079460958");
    }

    #[test]
    fn rejects_non_e164() {
        for bad in ["", "5551234567", "+", "+0123", "+1abc5551234", "+1234567890123456", "not a phone", "+1"] {
            assert!(Phone::parse(bad).is_err(), "{bad}");
        }
    }
}
