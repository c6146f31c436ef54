//! Time as a dependency: the webhook relay (and later the dialer) ask a `Clock`, so tests
//! can move time forward instead of sleeping through a retry schedule.

use std::sync::Mutex;

use crate::domain::Timestamp;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// Real time plus an offset that tests advance.
#[derive(Default)]
pub struct OffsetClock {
    offset_seconds: Mutex<i64>,
}

impl OffsetClock {
    pub fn advance(&self, seconds: i64) {
        *self.offset_seconds.lock().unwrap_or_else(|e| e.into_inner()) += seconds;
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> Timestamp {
        Timestamp::now().plus_seconds(*self.offset_seconds.lock().unwrap_or_else(|e| e.into_inner()))
    }
}
