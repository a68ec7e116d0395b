//! The conformance suite on S3 (SeaweedFS, started by `scripts/test`) with
//! writes unchecked (`S3Builder::write_checks(false)`: keys as S3 has them): every
//! behaviour but the fs meaning of directories, which these writes give up. Left
//! out: `directory_read_as_file` (a write over keys that lie below its name) and
//! `backends_agree_on_edge_cases` (a rename below a file), which such writes
//! store. A test added to the suite runs here once it is named below.

mod common_s3;
mod conformance;

conformance_tests!(@each common_s3::unchecked_operator;
    write_read_roundtrip, empty_object, large_object, names_with_special_characters,
    names_with_line_breaks_and_control_characters,
    overwrite, concurrent_writers_last_wins_never_torn, read_missing,
    range_edge_cases, read_ranges_in_request_order, read_ranges_split_into_parts,
    reader_seeks_back_and_forth, reader_stream_and_futures_io, writer_in_pieces,
    writer_aborted_midway, writer_dropped_without_close, list_one_level_and_recursive,
    delete_and_remove_all, stat_and_exists, copy_and_rename, paths_are_relative_to_the_root,
    blocking_api_from_plain_and_async_threads, conditional_reads, conditional_writes,
    etag_changes_with_every_write, list_start_after, delete_many_in_one_call,
    every_operation_fails_after_shutdown,
    reader_errors_are_sticky, writer_errors_are_sticky, loops_over_operations_let_timers_fire,
    read_ranges_reads_one_version, reads_over_the_buffer_limit_are_refused,
    read_ranges_of_the_version_asked_for, overlong_paths_are_refused
);
