//! Huge pages for a big vector about to be filled (feature `hugepages`, on by default; Linux only, a no-op
//! elsewhere). A load of a 256 MiB `Vec<f64>` spends about half its time in the kernel's first-touch faults of the
//! vector's 4 KiB pages; with transparent huge pages in `madvise` mode (the usual default) a region must ask for
//! 2 MiB pages, as numpy asks for its arrays. [`advise`] asks, before the first byte is written. It changes how the
//! memory is backed, never what it holds: advice the kernel declines changes nothing.

/// Huge pages from here: smaller vectors gain little.
const FROM: usize = 4 << 20;

/// The huge page size the advice is aligned to.
#[cfg(all(feature = "hugepages", target_os = "linux"))]
const HUGE: usize = 2 << 20;

/// Asks the kernel to back `v` (at least [`FROM`] bytes; its 2 MiB-aligned interior) with huge pages. Call it
/// before writing: pages already touched keep their size until the kernel's background collapse.
pub(crate) fn advise<T>(v: &mut [T]) {
    let len = std::mem::size_of_val(v);
    #[cfg(all(feature = "hugepages", target_os = "linux"))]
    if len >= FROM {
        let start = v.as_mut_ptr() as usize;
        let first = start.next_multiple_of(HUGE);
        let end = (start + len) / HUGE * HUGE;
        if end > first {
            // SAFETY: [first, end) lies inside `v`'s allocation, which this function borrows mutably, so no one
            // else uses it now. MADV_HUGEPAGE only advises the kernel how to back those pages; it neither changes
            // their contents nor unmaps them. Its result is ignored on purpose: declined advice changes nothing.
            #[allow(unsafe_code)]
            unsafe {
                libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(all(feature = "hugepages", target_os = "linux")))]
    let _ = (len, FROM);
}

#[cfg(all(test, feature = "hugepages", target_os = "linux"))]
mod tests {
    use super::*;

    /// The kB of huge pages backing the mapping that holds `addr` (`/proc/self/smaps`).
    fn huge_kb_at(addr: usize) -> Option<u64> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        let mut inside = false;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ') {
                if let Some((a, b)) = range.split_once('-') {
                    if let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) {
                        inside = (a..b).contains(&addr);
                        continue;
                    }
                }
            }
            if inside {
                if let Some(kb) = line.strip_prefix("AnonHugePages:") {
                    return kb.trim().trim_end_matches(" kB").trim().parse().ok();
                }
            }
        }
        None
    }

    /// The kernel's count of huge-page faults it could not serve with a huge page (`/proc/vmstat`).
    fn thp_fallbacks() -> Option<u64> {
        let vmstat = std::fs::read_to_string("/proc/vmstat").ok()?;
        vmstat
            .lines()
            .find_map(|l| l.strip_prefix("thp_fault_fallback "))
            .and_then(|n| n.trim().parse().ok())
    }

    /// Where transparent huge pages serve an advised region (`enabled` and `defrag` not `never`), an advised
    /// vector written after the advice is backed by huge pages, or the kernel tried and fell back (memory too
    /// fragmented: it counts that); the values are untouched either way. Without the advice neither happens here.
    #[test]
    fn an_advised_vector_is_backed_by_huge_pages_where_the_kernel_allows() {
        let thp = |f: &str| std::fs::read_to_string(format!("/sys/kernel/mm/transparent_hugepage/{f}")).ok();
        let (Some(enabled), Some(defrag)) = (thp("enabled"), thp("defrag")) else {
            eprintln!("no transparent huge pages here: nothing to check");
            return;
        };
        if enabled.contains("[never]") || defrag.contains("[never]") || defrag.contains("[defer]") {
            eprintln!("transparent huge pages off for advised regions here ({enabled:?}, {defrag:?})");
            return;
        }
        let fallbacks = thp_fallbacks();
        let mut v = vec![0u64; (64 << 20) / 8];
        advise(&mut v);
        for (i, x) in v.iter_mut().enumerate() {
            *x = i as u64;
        }
        let addr = v.as_ptr() as usize + (32 << 20);
        let huge = huge_kb_at(addr).expect("the vector's mapping in /proc/self/smaps");
        let fell_back = matches!((fallbacks, thp_fallbacks()), (Some(a), Some(b)) if b > a);
        assert!(
            huge >= 2048 || fell_back,
            "{huge} kB of huge pages behind a 64 MiB advised vector, and no huge-page fault fell back"
        );
        if huge < 2048 {
            eprintln!("the kernel fell back to small pages (fragmented memory): the advice was taken");
        }
        assert!(v.iter().enumerate().all(|(i, &x)| x == i as u64));
    }

    #[test]
    fn small_vectors_are_left_alone() {
        let mut v = vec![1u8; FROM - 1];
        advise(&mut v);
        assert!(v.iter().all(|&x| x == 1));
    }
}
