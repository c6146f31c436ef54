//! Resource ids: 24 lowercase hex characters, laid out like a MongoDB ObjectId
//! (4-byte seconds, 5 random bytes fixed per process, 3-byte counter) so that ids
//! created by one process sort in creation order and never collide across processes.

use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use rand::Rng;

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(String);

#[derive(Debug, thiserror::Error)]
#[error("must be 24 lowercase hexadecimal characters")]
pub struct InvalidId;

static PROCESS_RANDOM: OnceLock<[u8; 5]> = OnceLock::new();
static COUNTER: OnceLock<AtomicU32> = OnceLock::new();

impl Id {
    pub fn generate() -> Id {
        let seconds =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as u32).unwrap_or(0);
        let random = PROCESS_RANDOM.get_or_init(|| rand::rng().random());
        let counter = COUNTER
            .get_or_init(|| AtomicU32::new(rand::rng().random::<u32>() & 0x00ff_ffff))
            .fetch_add(1, Ordering::Relaxed)
            & 0x00ff_ffff;
        let mut bytes = [0u8; 12];
        bytes[..4].copy_from_slice(&seconds.to_be_bytes());
        bytes[4..9].copy_from_slice(random);
        bytes[9..].copy_from_slice(&counter.to_be_bytes()[1..]);
        Id(hex::encode(bytes))
    }

    pub fn parse(s: &str) -> Result<Id, InvalidId> {
        if s.len() == 24 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            Ok(Id(s.to_owned()))
        } else {
            Err(InvalidId)
        }
    }

    /// For values read back from our own database.
    pub fn from_trusted(s: String) -> Id {
        Id(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", self.0)
    }
}

impl serde::Serialize for Id {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Id {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Id, D::Error> {
        let s = String::deserialize(d)?;
        Id::parse(&s)
            .map_err(|_| serde::de::Error::custom(format!("'{s}' is not a valid id (24 lowercase hex characters)")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_valid_unique_and_ordered() {
        let a = Id::generate();
        let b = Id::generate();
        assert!(Id::parse(a.as_str()).is_ok());
        assert_ne!(a, b);
        // The counter makes ids of one process increase (barring a wrap of its 24 bits).
        assert!(a < b || &a.as_str()[18..] == "ffffff");
    }

    #[test]
    fn rejects_bad_ids() {
        for bad in [
            "",
            "60a2e7f3b9c1a83e94d8f2c",
            "60A2E7F3B9C1A83E94D8F2C3",
            "60a2e7f3b9c1a83e94d8f2cg",
            "60a2e7f3b9c1a83e94d8f2c30",
        ] {
            assert!(Id::parse(bad).is_err(), "{bad}");
        }
        assert!(Id::parse("60a2e7f3b9c1a83e94d8f2c3").is_ok());
    }
}
