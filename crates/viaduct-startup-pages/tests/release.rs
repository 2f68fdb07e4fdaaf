//! Releasing the executable's read-only pages: the resident set shrinks, and the code that runs
//! next comes back from the page cache unchanged.

#![cfg(all(target_os = "linux", target_pointer_width = "64"))]

/// Resident kilobytes mapped from the test executable itself, from `/proc/self/smaps`.
fn resident_kib_of_executable() -> u64 {
    let exe = std::fs::read_link("/proc/self/exe").expect("/proc/self/exe");
    let exe = exe.to_string_lossy().into_owned();
    let smaps = std::fs::read_to_string("/proc/self/smaps").expect("/proc/self/smaps");
    let mut in_exe = false;
    let mut total = 0;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let is_header = fields
            .next()
            .and_then(|range| range.split_once('-'))
            .is_some_and(|(a, b)| {
                u64::from_str_radix(a, 16).is_ok() && u64::from_str_radix(b, 16).is_ok()
            });
        if is_header {
            let writable = fields.next().is_some_and(|perms| perms.contains('w'));
            in_exe = !writable && line.ends_with(exe.as_str());
        } else if let Some(kib) = line.strip_prefix("Rss:") {
            if in_exe {
                total += kib
                    .trim()
                    .trim_end_matches(" kB")
                    .parse::<u64>()
                    .expect("Rss value");
            }
        }
    }
    total
}

#[test]
fn release_drops_read_only_pages_and_code_still_runs() {
    // Touch a good deal of code first, so that there is something to release.
    let text: String = (0..2000).map(|i| format!("{i:x},")).collect();
    let before = resident_kib_of_executable();
    assert!(
        before > 0,
        "the executable's read-only segments are resident"
    );

    let released = viaduct_startup_pages::release().expect("released");
    assert!(released > 0, "some pages were released");
    let after = resident_kib_of_executable();
    assert!(
        after < before,
        "the resident read-only pages went from {before} KiB to {after} KiB"
    );

    // The code and constants are mapped back on use, with the same bytes.
    let again: String = (0..2000).map(|i| format!("{i:x},")).collect();
    assert_eq!(text, again);
    let sum: u64 = std::thread::spawn(|| (1..=1000u64).sum())
        .join()
        .expect("thread");
    assert_eq!(sum, 500_500);
}
