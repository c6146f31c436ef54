//! The synthesized-sentence cache: (voice, sentence text) -> PCM, least recently used out.
//!
//! Bounded in bytes, not entries: a sentence costs 2 bytes per sample (44 KB per second at
//! 22.05 kHz) plus its key, so the default 64 MiB holds about 25 minutes of speech, far more
//! than a set of templates' fixed lines. A sentence larger than an eighth of the budget is not
//! cached, so one long reply cannot flush everything else. Values are `Arc<[i16]>`: a hit
//! clones a pointer under a short mutex, never the samples.
//!
//! The key is the whitespace-normalised sentence text, case and punctuation kept (both change
//! how it is said), so "Thanks!" and "thanks." are separate entries.

use std::sync::{Arc, Mutex, MutexGuard};

use lru::LruCache;

/// Bytes an entry costs besides its samples and key (list node, map slot, Arc header).
const ENTRY_OVERHEAD: usize = 96;

/// A cached sentence.
#[derive(Debug, Clone)]
pub struct CachedAudio {
    pub samples: Arc<[i16]>,
    pub sample_rate: u32,
}

/// Counters since the cache was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub entries: usize,
    pub bytes: usize,
    pub max_bytes: usize,
}

/// Thread-safe, byte-bounded LRU of synthesized sentences.
#[derive(Debug)]
pub struct AudioCache {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    lru: LruCache<String, CachedAudio>,
    bytes: usize,
    max_bytes: usize,
    hits: u64,
    misses: u64,
}

fn key(voice: &str, text: &str) -> String {
    // NUL cannot occur in a voice name (they are checked), so the key is unambiguous.
    let mut key = String::with_capacity(voice.len() + 1 + text.len());
    key.push_str(voice);
    key.push('\0');
    key.push_str(text);
    key
}

fn cost(key: &str, audio: &CachedAudio) -> usize {
    key.len() + audio.samples.len() * 2 + ENTRY_OVERHEAD
}

impl AudioCache {
    /// A cache holding at most `max_bytes` (0 disables it).
    pub fn new(max_bytes: usize) -> Self {
        AudioCache { inner: Mutex::new(Inner { lru: LruCache::unbounded(), bytes: 0, max_bytes, hits: 0, misses: 0 }) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The data is a cache: after a panic elsewhere it is still consistent enough to use.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The sentence's audio if cached (and marks it recently used).
    pub fn get(&self, voice: &str, text: &str) -> Option<CachedAudio> {
        let key = key(voice, text);
        let mut inner = self.lock();
        let found = inner.lru.get(&key).cloned();
        if found.is_some() {
            inner.hits += 1;
            metrics::counter!("tts_cache_hits_total").increment(1);
        } else {
            inner.misses += 1;
            metrics::counter!("tts_cache_misses_total").increment(1);
        }
        found
    }

    /// Whether the sentence is cached, without counting a hit or changing its recency.
    pub fn contains(&self, voice: &str, text: &str) -> bool {
        self.lock().lru.contains(&key(voice, text))
    }

    /// Stores a sentence, evicting the least recently used until it fits. Returns false when
    /// the entry is too large to cache.
    pub fn insert(&self, voice: &str, text: &str, audio: CachedAudio) -> bool {
        let key = key(voice, text);
        let size = cost(&key, &audio);
        let mut inner = self.lock();
        if size > inner.max_bytes / 8 {
            return false;
        }
        if let Some(old) = inner.lru.pop(&key) {
            inner.bytes -= cost(&key, &old);
        }
        while inner.bytes + size > inner.max_bytes {
            match inner.lru.pop_lru() {
                Some((k, v)) => inner.bytes -= cost(&k, &v),
                None => break,
            }
        }
        inner.bytes += size;
        inner.lru.put(key, audio);
        true
    }

    pub fn stats(&self) -> CacheStats {
        let inner = self.lock();
        CacheStats {
            hits: inner.hits,
            misses: inner.misses,
            entries: inner.lru.len(),
            bytes: inner.bytes,
            max_bytes: inner.max_bytes,
        }
    }

    /// Drops every entry (counters are kept).
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.lru.clear();
        inner.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn audio(len: usize, value: i16) -> CachedAudio {
        CachedAudio { samples: vec![value; len].into(), sample_rate: 22050 }
    }

    #[test]
    fn hits_share_the_samples_and_are_counted() {
        let cache = AudioCache::new(1 << 20);
        assert!(cache.get("joe", "Hello.").is_none());
        assert!(cache.insert("joe", "Hello.", audio(100, 7)));
        let a = cache.get("joe", "Hello.").unwrap();
        let b = cache.get("joe", "Hello.").unwrap();
        assert!(Arc::ptr_eq(&a.samples, &b.samples));
        assert!(cache.get("other", "Hello.").is_none(), "keys include the voice");
        assert!(cache.get("joe", "hello.").is_none(), "case is part of the key");
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses, stats.entries), (2, 3, 1));
        assert_eq!(stats.bytes, "joe\0Hello.".len() + 200 + ENTRY_OVERHEAD);
    }

    #[test]
    fn the_least_recently_used_goes_first_and_bytes_stay_bounded() {
        let per_entry = "v\0s0".len() + 2000 + ENTRY_OVERHEAD;
        let cache = AudioCache::new(per_entry * 8 + 10);
        for i in 0..8 {
            assert!(cache.insert("v", &format!("s{i}"), audio(1000, i)));
        }
        assert_eq!(cache.stats().entries, 8);
        // Touch s0 so s1 is now the oldest.
        assert!(cache.get("v", "s0").is_some());
        assert!(cache.insert("v", "s8", audio(1000, 8)));
        assert!(cache.contains("v", "s0"));
        assert!(!cache.contains("v", "s1"));
        assert!(cache.stats().bytes <= cache.stats().max_bytes);
        // Replacing an entry does not count it twice.
        let before = cache.stats().bytes;
        assert!(cache.insert("v", "s8", audio(1000, 9)));
        assert_eq!(cache.stats().bytes, before);
        assert_eq!(cache.get("v", "s8").unwrap().samples[0], 9);
    }

    #[test]
    fn oversized_entries_and_a_zero_budget_are_not_cached() {
        let cache = AudioCache::new(80_000);
        assert!(!cache.insert("v", "long", audio(10_000, 1)));
        assert_eq!(cache.stats().entries, 0);
        let off = AudioCache::new(0);
        assert!(!off.insert("v", "s", audio(1, 1)));
        assert!(off.get("v", "s").is_none());
    }
}
