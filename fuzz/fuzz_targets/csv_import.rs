//! The CSV importer (`POST /v1/contact-lists/{id}/import`) as the handler reads a body: the
//! header mapping, every row's validation and the row, column and error caps, storing
//! nothing. Any tenant can send any bytes; none of it may panic, and every row is counted
//! once, as written or as failed.
#![no_main]

use std::sync::OnceLock;

use callcenter::api::contact_lists::dry_run_import;
use libfuzzer_sys::fuzz_target;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| tokio::runtime::Builder::new_current_thread().build().expect("a runtime"))
}

fuzz_target!(|data: &[u8]| {
    if let Ok(result) = runtime().block_on(dry_run_import(data)) {
        assert_eq!(result.created + result.failed, result.total_rows, "every row is counted once");
        assert!(result.errors.len() as u64 <= result.failed);
    }
});
