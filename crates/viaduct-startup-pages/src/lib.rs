//! Releases the binary's start-up code from memory once the configuration has settled, as the
//! Linux kernel frees its `__init` sections after boot.
//!
//! Most of the code that runs at start runs only then: parsing the static and dynamic
//! configuration, compiling the first snapshot, the dynamic loader's relocations. Its pages stay
//! mapped (and count in the RSS) for the life of the process, together with their neighbours,
//! which the kernel maps along in 64 KiB windows: about 11 of the 15 MiB of an idle proxy are the
//! binary's code and read-only data, and under 4 MiB of them run while serving.
//!
//! Dropping the mapping of the read-only segments (`MADV_DONTNEED`) costs nothing in
//! correctness: they are clean, private and never written, so the next access maps the same
//! bytes back from the page cache (a minor fault, about a microsecond per 64 KiB window). Only
//! the code that actually runs returns. The writable segments, and the read-only-after-relocation
//! one (`PT_GNU_RELRO`), hold relocated data and are never touched here.
//!
//! The release is skipped while a debugger is attached: its breakpoints are private copies of
//! code pages that the release would drop.

use std::fmt;

/// Why nothing was released.
#[derive(Debug)]
pub enum NotReleased {
    /// Not Linux on a 64-bit machine.
    Unsupported,
    /// A debugger is attached.
    Traced,
    /// The kernel refused `madvise`.
    Refused(std::io::Error),
}

impl fmt::Display for NotReleased {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotReleased::Unsupported => f.write_str("not supported on this system"),
            NotReleased::Traced => f.write_str("a debugger is attached"),
            NotReleased::Refused(e) => write!(f, "madvise: {e}"),
        }
    }
}

/// Drops the mappings of the executable's read-only `PT_LOAD` segments (code, constants,
/// unwinding tables, relocation records). Returns the bytes released.
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
pub fn release() -> Result<usize, NotReleased> {
    if traced() {
        return Err(NotReleased::Traced);
    }
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    // SAFETY: the callback only reads the program headers it is handed, during the call, and
    // writes to `ranges` through the pointer passed as `data`, which outlives the call.
    unsafe {
        libc::dl_iterate_phdr(
            Some(main_program_ranges),
            (&mut ranges as *mut Vec<(usize, usize)>).cast(),
        );
    }
    let mut released = 0;
    for (start, end) in ranges {
        // SAFETY: the range is whole pages of a clean, private, read-only mapping of the
        // executable (see `main_program_ranges`): dropping it only means that its pages are
        // mapped again from the file on their next access. No Rust object lives there.
        let rc =
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
        if rc != 0 {
            return Err(NotReleased::Refused(std::io::Error::last_os_error()));
        }
        released += end - start;
    }
    Ok(released)
}

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
pub fn release() -> Result<usize, NotReleased> {
    Err(NotReleased::Unsupported)
}

/// `dl_iterate_phdr` callback: collects the page-aligned ranges of the main program's
/// read-only loadable segments that share no page with a writable or RELRO segment, then stops
/// (the main program is always the first object reported).
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
unsafe extern "C" fn main_program_ranges(
    info: *mut libc::dl_phdr_info,
    _size: libc::size_t,
    data: *mut libc::c_void,
) -> libc::c_int {
    // SAFETY: the loader hands a valid `dl_phdr_info` for the duration of the call; `data` is
    // the `Vec` that `release` passed, borrowed by nothing else meanwhile.
    let (info, ranges) = unsafe { (&*info, &mut *data.cast::<Vec<(usize, usize)>>()) };
    // SAFETY: `dlpi_phdr` points to `dlpi_phnum` program headers, valid during the call.
    let headers =
        unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) };
    let page = page_size();
    let base = info.dlpi_addr as usize;
    let span = |h: &libc::Elf64_Phdr| {
        let start = base + h.p_vaddr as usize;
        (start, start + h.p_memsz as usize)
    };
    // Pages any part of which is written to: writable segments and the relocated read-only data.
    let written: Vec<(usize, usize)> = headers
        .iter()
        .filter(|h| {
            h.p_type == libc::PT_GNU_RELRO
                || (h.p_type == libc::PT_LOAD && h.p_flags & libc::PF_W != 0)
        })
        .map(|h| {
            let (start, end) = span(h);
            (start & !(page - 1), end.next_multiple_of(page))
        })
        .collect();
    for header in headers {
        if header.p_type != libc::PT_LOAD || header.p_flags & libc::PF_W != 0 {
            continue;
        }
        let (start, end) = span(header);
        // Whole pages only: a partial page at either end may hold a neighbour's bytes.
        let (start, end) = (start.next_multiple_of(page), end & !(page - 1));
        let overlaps = written.iter().any(|&(w0, w1)| start < w1 && w0 < end);
        if start < end && !overlaps {
            ranges.push((start, end));
        }
    }
    1
}

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096)
}

/// Whether a debugger (or any ptrace tracer) is attached, from `/proc/self/status`.
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
fn traced() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("TracerPid:"))
                .is_some_and(|pid| pid.trim() != "0")
        })
        .unwrap_or(true)
}
