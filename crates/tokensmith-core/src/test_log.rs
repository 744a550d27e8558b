//! Test helper: the log lines `tracing` events write while a closure runs.
//!
//! One global subscriber (set on first use) writes each event into a buffer
//! of the thread that emitted it, when that thread is capturing. A scoped
//! subscriber (`with_default`) would race with other tests' threads over
//! `tracing`'s per-callsite interest cache and miss events now and then.

use std::cell::RefCell;
use std::io::Write;
use std::sync::Once;

thread_local! {
    static BUFFER: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
}

/// Appends to this thread's buffer while it captures; discards otherwise.
struct ThreadWriter;

impl Write for ThreadWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        BUFFER.with_borrow_mut(|buffer| {
            if let Some(buffer) = buffer {
                buffer.extend_from_slice(bytes);
            }
        });
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `f` on this thread and returns what it logged (every level, no
/// colours), one event per line.
pub(crate) fn capture(f: impl FnOnce()) -> String {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(|| ThreadWriter)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
    });
    BUFFER.set(Some(Vec::new()));
    f();
    let bytes = BUFFER.take().unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}
