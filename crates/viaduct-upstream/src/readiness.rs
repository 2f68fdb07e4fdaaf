//! Sparing the system call that only learns a socket is empty.
//!
//! tokio keeps a socket marked readable until a read fails with `WouldBlock`, so the read
//! after one that emptied the socket is a wasted system call (and a pooled connection's
//! liveness probe, one more). A read that returned less than it had room for did empty the
//! socket, as nginx also reasons: [`read_into`] then clears the mark at no cost. tokio clears
//! it only if no readiness event arrived since, so data that lands in between is not missed.

use std::io;

use bytes::BytesMut;
use tokio::io::Interest;
use tokio::net::TcpStream;

/// `stream.try_read_buf(buf)`, clearing the readable mark after a short read.
pub fn read_into(stream: &TcpStream, buf: &mut BytesMut) -> io::Result<usize> {
    let room = buf.capacity() - buf.len();
    let n = stream.try_read_buf(buf)?;
    if n > 0 && n < room {
        let _ = stream.try_io(Interest::READABLE, || {
            Err::<(), _>(io::ErrorKind::WouldBlock.into())
        });
    }
    Ok(n)
}
