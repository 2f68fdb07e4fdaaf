//! The writer thread. A thread rather than a task: its blocking file writes then never hold a
//! runtime worker, however slow the disk.
//!
//! Records reach it through a lock-free bounded queue. The request path never wakes it for
//! one record (a wake-up is a system call and a context switch, which on a small machine
//! costs more than the request): the writer drains the queue every [`DRAIN_INTERVAL`], and is
//! woken early only when the queue is half full.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, Thread};
use std::time::Duration;

use crossbeam_queue::ArrayQueue;

use super::{format_line, AccessLogError, AccessLogSettings, AccessRecord};

/// How long a line may wait in the queue before it is written.
const DRAIN_INTERVAL: Duration = Duration::from_millis(50);

/// The request path's side of the writer.
#[derive(Debug)]
pub(super) struct Writer {
    queue: Arc<ArrayQueue<Box<AccessRecord>>>,
    signals: Arc<Signals>,
    thread: Thread,
    handle: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug, Default)]
struct Signals {
    reopen: AtomicBool,
    stop: AtomicBool,
}

impl Writer {
    pub(super) fn spawn(settings: Arc<AccessLogSettings>) -> Result<Writer, AccessLogError> {
        let out = open(&settings)?;
        let queue = Arc::new(ArrayQueue::new(settings.queue.max(1)));
        let signals = Arc::new(Signals::default());
        let handle = {
            let queue = queue.clone();
            let signals = signals.clone();
            std::thread::Builder::new()
                .name("access-log".into())
                .spawn(move || run(&settings, out, &queue, &signals))
                .map_err(AccessLogError::Thread)?
        };
        Ok(Writer {
            queue,
            signals,
            thread: handle.thread().clone(),
            handle: Mutex::new(Some(handle)),
        })
    }

    /// Queues a record; gives it back when the queue is full.
    pub(super) fn push(&self, record: Box<AccessRecord>) -> Result<(), Box<AccessRecord>> {
        self.queue.push(record)?;
        if self.queue.len() * 2 >= self.queue.capacity() {
            self.thread.unpark();
        }
        Ok(())
    }

    pub(super) fn reopen(&self) {
        self.signals.reopen.store(true, Ordering::Release);
        self.thread.unpark();
    }

    /// Writes what is queued and stops the thread.
    pub(super) fn stop(&self) {
        self.signals.stop.store(true, Ordering::Release);
        self.thread.unpark();
        let handle = self.handle.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

fn run(
    settings: &AccessLogSettings,
    mut out: BufWriter<Box<dyn Write + Send>>,
    queue: &ArrayQueue<Box<AccessRecord>>,
    signals: &Signals,
) {
    loop {
        let stopping = signals.stop.load(Ordering::Acquire);
        while let Some(record) = queue.pop() {
            let line = format_line(settings, &record);
            if let Err(e) = out.write_all(line.as_bytes()) {
                tracing::warn!(error = %e, "access log: write failed");
            }
        }
        if let Err(e) = out.flush() {
            tracing::warn!(error = %e, "access log: flush failed");
        }
        if stopping {
            return;
        }
        if signals.reopen.swap(false, Ordering::AcqRel) {
            match open(settings) {
                Ok(reopened) => out = reopened,
                Err(e) => {
                    tracing::error!(error = %e, "access log: reopening failed; still writing to the old file")
                }
            }
        }
        std::thread::park_timeout(DRAIN_INTERVAL);
    }
}

fn open(settings: &AccessLogSettings) -> Result<BufWriter<Box<dyn Write + Send>>, AccessLogError> {
    let sink: Box<dyn Write + Send> = match &settings.file_path {
        Some(path) => Box::new(open_file(path).map_err(|source| AccessLogError::Open {
            path: path.display().to_string(),
            source,
        })?),
        None => Box::new(io::stdout()),
    };
    Ok(BufWriter::with_capacity(64 * 1024, sink))
}

fn open_file(path: &Path) -> io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}
