//! The writer thread. A thread rather than a task: its blocking file writes then never hold a
//! runtime worker, however slow the disk.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError};
use std::sync::Arc;

use super::{format_line, AccessLogError, AccessLogSettings, AccessRecord};

pub(super) enum Message {
    Record(Box<AccessRecord>),
    /// Reopen the file (log rotation).
    Reopen,
}

pub(super) fn spawn(
    settings: Arc<AccessLogSettings>,
) -> Result<SyncSender<Message>, AccessLogError> {
    let out = open(&settings)?;
    let (sender, receiver) = sync_channel(settings.queue);
    std::thread::Builder::new()
        .name("access-log".into())
        .spawn(move || run(&settings, out, &receiver))
        .map_err(AccessLogError::Thread)?;
    Ok(sender)
}

fn run(
    settings: &AccessLogSettings,
    mut out: BufWriter<Box<dyn Write + Send>>,
    receiver: &Receiver<Message>,
) {
    let mut next = receiver.recv().ok();
    while let Some(message) = next {
        match message {
            Message::Record(record) => {
                let line = format_line(settings, &record);
                if let Err(e) = out.write_all(line.as_bytes()) {
                    tracing::warn!(error = %e, "access log: write failed");
                }
            }
            Message::Reopen => {
                let _ = out.flush();
                match open(settings) {
                    Ok(reopened) => out = reopened,
                    Err(e) => {
                        tracing::error!(error = %e, "access log: reopening failed; still writing to the old file")
                    }
                }
            }
        }
        // Lines reach the file as soon as the queue is empty, in batches while it is not.
        next = match receiver.try_recv() {
            Ok(message) => Some(message),
            Err(TryRecvError::Empty) => {
                if let Err(e) = out.flush() {
                    tracing::warn!(error = %e, "access log: flush failed");
                }
                receiver.recv().ok()
            }
            Err(TryRecvError::Disconnected) => None,
        };
    }
    let _ = out.flush();
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
