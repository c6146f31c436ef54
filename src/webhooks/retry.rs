//! The delivery retry schedule: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h
//! (each wait with +-10 % jitter so a recovering receiver is not hit by a thundering herd),
//! then the delivery is failed.

use std::time::Duration;

use rand::Rng;

/// Waits before attempt 1, 2, ... (attempt 1 is immediate).
pub const SCHEDULE: [Duration; 8] = [
    Duration::ZERO,
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// An endpoint whose deliveries have failed continuously this long is disabled.
pub const DISABLE_AFTER: Duration = Duration::from_secs(5 * 24 * 3600);

/// The wait before the next attempt after `attempts_made` failed attempts, or `None`
/// when the schedule is exhausted.
pub fn next_delay(attempts_made: u32, rng: &mut impl Rng) -> Option<Duration> {
    let base = *SCHEDULE.get(attempts_made as usize)?;
    if base.is_zero() {
        return Some(base);
    }
    let jitter = rng.random_range(0.9..=1.1);
    Some(base.mul_f64(jitter))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_schedule_within_jitter_then_stops() {
        let mut rng = rand::rng();
        assert_eq!(next_delay(0, &mut rng), Some(Duration::ZERO));
        for (i, base) in SCHEDULE.iter().enumerate().skip(1) {
            let d = next_delay(i as u32, &mut rng).unwrap();
            assert!(d >= base.mul_f64(0.9) && d <= base.mul_f64(1.1), "attempt {i}: {d:?}");
        }
        assert_eq!(next_delay(SCHEDULE.len() as u32, &mut rng), None);
    }
}
