//! Property tests of the pure parts every backend relies on: path normalization,
//! range resolution and `read_ranges` planning. Arbitrary input gives an answer or
//! an error, never a panic, and the answers keep their promises.

use proptest::prelude::*;
use storage::ErrorKind;
use storage::raw::{
    ByteRange, PlanLimits, normalize_dir_path, normalize_file_path, normalize_path, plan,
};

/// Path-like strings: segments of names, `.`, `..`, empty, with odd characters.
fn path_like() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        Just(String::new()),
        Just(".".to_owned()),
        Just("..".to_owned()),
        "[a-z]{1,3}",
        "[ %+#?é🦀\\\\]{1,2}",
        any::<String>(),
    ];
    (
        proptest::collection::vec(segment, 0..8),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(segments, leading, trailing)| {
            let mut path = segments.join("/");
            if leading {
                path.insert(0, '/');
            }
            if trailing {
                path.push('/');
            }
            path
        })
}

proptest! {
    #[test]
    fn normalized_paths_stay_in_the_root_and_are_fixed_points(path in path_like()) {
        match normalize_path(&path) {
            Ok(normal) => {
                prop_assert!(!normal.starts_with('/'));
                prop_assert!(!normal.contains('\0'));
                let trimmed = normal.strip_suffix('/').unwrap_or(&normal);
                if !trimmed.is_empty() {
                    for segment in trimmed.split('/') {
                        prop_assert!(!matches!(segment, "" | "." | ".."), "{normal:?}");
                    }
                }
                prop_assert_eq!(normalize_path(&normal).unwrap(), normal.clone());
                let names_dir = path.ends_with('/')
                    || matches!(path.rsplit('/').next(), Some("." | ".."));
                prop_assert_eq!(normal.ends_with('/'), names_dir && !normal.is_empty());
            }
            Err(e) => prop_assert_eq!(e.kind(), ErrorKind::InvalidInput),
        }
        if let Ok(file) = normalize_file_path(&path) {
            prop_assert!(!file.is_empty() && !file.ends_with('/'));
        }
        if let Ok(dir) = normalize_dir_path(&path) {
            prop_assert!(dir.is_empty() || dir.ends_with('/'));
        }
    }

    #[test]
    fn resolved_ranges_lie_within_the_object(
        start in 0..2_000_u64,
        end in proptest::option::of(0..2_000_u64),
        size in 0..1_500_u64,
        form in 0..3_u8,
    ) {
        let range = match (form, end) {
            (0, Some(end)) => ByteRange::new(start..end),
            (0, None) => ByteRange::new(start..),
            (1, Some(end)) => ByteRange::http(start..end),
            (1, None) => ByteRange::http(start..),
            _ => ByteRange::suffix(start),
        };
        match range.resolve(size) {
            Ok(r) => {
                prop_assert!(r.start <= r.end && r.end <= size, "{range} of {size}: {r:?}");
                if form == 0 {
                    prop_assert_eq!(r.start, start);
                    prop_assert_eq!(r.end, end.unwrap_or(size.max(start)));
                }
            }
            Err(e) => {
                prop_assert!(
                    matches!(e.kind(), ErrorKind::RangeNotSatisfiable | ErrorKind::InvalidInput),
                    "{e}"
                );
                if e.kind() == ErrorKind::RangeNotSatisfiable {
                    let expected = size.to_string();
                    prop_assert_eq!(e.context("size"), Some(expected.as_str()));
                }
            }
        }
    }

    #[test]
    fn plans_cover_every_range_and_read_at_most_twice_what_was_asked(
        ranges in proptest::collection::vec((0..1_000_000_u64, 0..100_000_u64), 0..60),
        gap in 0..200_000_u64,
        split in proptest::option::of(1..300_000_u64),
        max_merge in 1..2_000_000_u64,
        capped in proptest::bool::ANY,
    ) {
        let ranges: Vec<_> = ranges.into_iter().map(|(s, len)| s..s + len).collect();
        let limits = PlanLimits {
            coalesce_gap: gap,
            split_size: split,
            max_merge_size: max_merge,
            max_buffer_size: u64::MAX,
            cap_overlaps: capped,
        };
        let p = plan(&ranges, &limits);
        prop_assert_eq!(p.pieces.len(), ranges.len());
        for (r, (group, piece)) in ranges.iter().zip(&p.pieces) {
            let g = &p.groups[*group];
            // The piece is this range, at its place in the group.
            prop_assert_eq!(g.range.start + piece.start as u64, r.start);
            prop_assert_eq!(g.range.start + piece.end as u64, r.end);
            prop_assert!(g.range.start <= r.start && r.end <= g.range.end);
        }
        // Every part belongs to exactly one group, in order.
        let mut next_part = 0;
        for g in &p.groups {
            prop_assert_eq!(g.parts.start, next_part);
            next_part = g.parts.end;
            let parts = &p.parts[g.parts.clone()];
            // Parts are contiguous, cover the group, and respect the split size.
            prop_assert_eq!(parts.first().map(|p| p.start), Some(g.range.start));
            prop_assert_eq!(parts.last().map(|p| p.end), Some(g.range.end));
            for w in parts.windows(2) {
                prop_assert_eq!(w[0].end, w[1].start);
            }
            if let Some(split) = split {
                prop_assert!(parts.iter().all(|p| p.end - p.start <= split));
            }
        }
        prop_assert_eq!(next_part, p.parts.len());
        if capped {
            // Each group is within the limit, or is one range longer than it (with
            // ranges inside it); and merging never reads more than twice the bytes
            // of the ranges (each counted, as each is its own read).
            for (i, g) in p.groups.iter().enumerate() {
                let longest = longest_in(&ranges, &p, i);
                prop_assert!(g.range.end - g.range.start <= max_merge.max(longest));
            }
            let read: u64 = p.groups.iter().map(|g| g.range.end - g.range.start).sum();
            let asked: u64 = ranges.iter().map(|r| r.end - r.start).sum();
            prop_assert!(read <= 2 * asked, "read {read} for {asked}");
            return Ok(());
        }
        // Groups do not overlap, and merging never reads more than twice the
        // bytes asked for (overlapping ranges counted once).
        let mut sorted: Vec<_> = p.groups.iter().map(|g| g.range.clone()).collect();
        sorted.sort_by_key(|r| r.start);
        for w in sorted.windows(2) {
            prop_assert!(w[0].end <= w[1].start || w[0].start == w[0].end || w[1].start == w[1].end);
        }
        let read: u64 = p.groups.iter().map(|g| g.range.end - g.range.start).sum();
        let mut covered = ranges.clone();
        covered.sort_by_key(|r| r.start);
        let mut asked = 0;
        let mut reach = 0;
        for r in covered {
            let from = r.start.max(reach);
            if r.end > from {
                asked += r.end - from;
            }
            reach = reach.max(r.end);
        }
        prop_assert!(read <= 2 * asked, "read {read} for {asked}");
    }

    #[test]
    fn no_group_is_longer_than_the_buffer_limit(
        ranges in proptest::collection::vec((0..1_000_000_u64, 0..100_000_u64), 0..60),
        gap in 0..200_000_u64,
        split in proptest::option::of(1..300_000_u64),
        max_merge in 1..2_000_000_u64,
        max_buffer in 1..200_000_u64,
        capped in proptest::bool::ANY,
    ) {
        let ranges: Vec<_> = ranges.into_iter().map(|(s, len)| s..s + len).collect();
        let limits = PlanLimits {
            coalesce_gap: gap,
            split_size: split,
            max_merge_size: max_merge,
            max_buffer_size: max_buffer,
            cap_overlaps: capped,
        };
        let p = plan(&ranges, &limits);
        prop_assert_eq!(p.pieces.len(), ranges.len());
        for (r, (group, piece)) in ranges.iter().zip(&p.pieces) {
            let g = &p.groups[*group];
            prop_assert_eq!(g.range.start + piece.start as u64, r.start);
            prop_assert_eq!(g.range.start + piece.end as u64, r.end);
        }
        // A group is within the limit, or is one range longer than it (with ranges
        // inside it): whatever merges, no buffer is longer than the limit allows.
        for (i, g) in p.groups.iter().enumerate() {
            let longest = longest_in(&ranges, &p, i);
            prop_assert!(
                g.range.end - g.range.start <= max_buffer.max(longest),
                "{:?} over {max_buffer}",
                g.range
            );
        }
    }
}

/// The length of the longest of `ranges` that plan `p` reads in group `group`.
fn longest_in(ranges: &[std::ops::Range<u64>], p: &storage::raw::ReadPlan, group: usize) -> u64 {
    ranges
        .iter()
        .zip(&p.pieces)
        .filter(|(_, (g, _))| *g == group)
        .map(|(r, _)| r.end - r.start)
        .max()
        .unwrap_or(0)
}
