use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::Mutex;

use crate::error::TestkitError;

/// Ports already handed out by this process: the OS may return a just-released ephemeral port
/// twice, and two tests of one binary must never be given the same one.
static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A loopback TCP port that was free a moment ago and that this process has not handed out before.
pub fn free_port() -> crate::Result<u16> {
    for _ in 0..64 {
        let listener = TcpListener::bind("127.0.0.1:0")
            .map_err(|e| TestkitError::io("binding 127.0.0.1:0 to find a free port", e))?;
        let port = listener
            .local_addr()
            .map_err(|e| TestkitError::io("reading the bound port", e))?
            .port();
        let mut guard = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
        if guard.get_or_insert_with(HashSet::new).insert(port) {
            return Ok(port);
        }
    }
    Err(TestkitError::io(
        "finding a free port",
        std::io::Error::other("64 attempts returned ports already in use by this process"),
    ))
}
