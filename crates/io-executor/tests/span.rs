//! Jobs run inside the submitting code's current `tracing` span.

mod common;

use common::pool;
use tracing::{Span, info_span};

fn current_span() -> Option<(tracing::Id, &'static str)> {
    let span = Span::current();
    Some((span.id()?, span.metadata()?.name()))
}

#[test]
fn jobs_inherit_the_submitters_span() {
    // A real subscriber, global so that the pool's threads see it too.
    tracing::subscriber::set_global_default(tracing_subscriber::registry())
        .expect("no other subscriber in this test binary");
    let executor = pool("span", 1, 1);
    let request = info_span!("request", path = "a/b.parquet");
    let id = request.id().expect("span enabled");
    let (on_worker, on_blocking) = request.in_scope(|| {
        (
            executor.spawn(async { current_span() }),
            executor.spawn_blocking(current_span),
        )
    });
    assert_eq!(on_worker.join().unwrap(), Some((id.clone(), "request")));
    assert_eq!(on_blocking.join().unwrap(), Some((id, "request")));
    // Outside any span, jobs are outside any span.
    assert_eq!(
        executor.spawn(async { current_span() }).join().unwrap(),
        None
    );
}
