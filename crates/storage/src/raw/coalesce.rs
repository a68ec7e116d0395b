//! Planning `read_ranges`: which reads to issue for a set of requested ranges.

use std::ops::Range;

/// How a set of requested ranges is read: ranges closer than `coalesce_gap` are
/// merged into one group (one read); a group longer than `split_size` is read as
/// parallel parts. Each requested range is then a slice of its group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadPlan {
    /// The merged ranges to read, in file order.
    pub groups: Vec<Group>,
    /// For each requested range, in request order: its group and its offsets in it.
    pub pieces: Vec<(usize, Range<usize>)>,
}

/// One merged range and the parts it is read in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The merged range.
    pub range: Range<u64>,
    /// The reads that make it up, in order (one unless the group is split).
    pub parts: Vec<Range<u64>>,
}

/// Plans the reads for `ranges` (each `start <= end`).
pub fn plan(ranges: &[Range<u64>], coalesce_gap: u64, split_size: Option<u64>) -> ReadPlan {
    let mut order: Vec<usize> = (0..ranges.len()).collect();
    order.sort_by_key(|&i| (ranges[i].start, ranges[i].end));
    let mut merged: Vec<Range<u64>> = Vec::new();
    let mut group_of = vec![0; ranges.len()];
    for i in order {
        let r = &ranges[i];
        match merged.last_mut() {
            Some(last) if r.start <= last.end.saturating_add(coalesce_gap) => {
                last.end = last.end.max(r.end);
            }
            _ => merged.push(r.clone()),
        }
        group_of[i] = merged.len() - 1;
    }
    let groups = merged
        .into_iter()
        .map(|range| {
            let parts = match split_size {
                Some(split) if split > 0 && range.end - range.start > split => {
                    let mut parts = Vec::new();
                    let mut at = range.start;
                    while at < range.end {
                        let end = (at + split).min(range.end);
                        parts.push(at..end);
                        at = end;
                    }
                    parts
                }
                _ => vec![range.clone()],
            };
            Group { range, parts }
        })
        .collect::<Vec<_>>();
    let pieces = ranges
        .iter()
        .zip(group_of)
        .map(|(r, g)| {
            let base = groups[g].range.start;
            (g, (r.start - base) as usize..(r.end - base) as usize)
        })
        .collect();
    ReadPlan { groups, pieces }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_ranges_merge_and_far_ones_do_not() {
        let p = plan(&[100..200, 0..50, 60..70, 10_000..10_100], 5, None);
        assert_eq!(
            p.groups.iter().map(|g| g.range.clone()).collect::<Vec<_>>(),
            [0..50, 60..70, 100..200, 10_000..10_100]
        );
        let p = plan(&[100..200, 0..50, 60..70, 10_000..10_100], 20, None);
        assert_eq!(
            p.groups.iter().map(|g| g.range.clone()).collect::<Vec<_>>(),
            [0..70, 100..200, 10_000..10_100]
        );
        let p = plan(&[100..200, 0..50, 60..70, 10_000..10_100], 50, None);
        assert_eq!(
            p.groups.iter().map(|g| g.range.clone()).collect::<Vec<_>>(),
            [0..200, 10_000..10_100]
        );
        assert_eq!(
            p.pieces,
            [(0, 100..200), (0, 0..50), (0, 60..70), (1, 0..100)]
        );
    }

    #[test]
    fn overlapping_and_empty_ranges() {
        let p = plan(&[0..10, 5..15, 7..7], 0, None);
        assert_eq!(p.groups.len(), 1);
        assert_eq!(p.groups[0].range, 0..15);
        assert_eq!(p.pieces, [(0, 0..10), (0, 5..15), (0, 7..7)]);
    }

    #[test]
    #[expect(
        clippy::single_range_in_vec_init,
        reason = "one requested range is the case under test"
    )]
    fn large_groups_split_into_parts() {
        let p = plan(&[0..25], 0, Some(10));
        assert_eq!(p.groups[0].parts, [0..10, 10..20, 20..25]);
        let p = plan(&[0..25], 0, None);
        assert_eq!(p.groups[0].parts, [0..25]);
    }
}
