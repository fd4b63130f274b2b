"""Run every benchmark: ``python -m benchmarks`` (``make bench``)."""

from benchmarks import (
    billing,
    billing_run,
    corba,
    events,
    lb,
    metering_backfill,
    metering_poll,
    metering_store,
    payment,
    reconcile,
    recording,
    router,
    security,
)

BENCHMARKS = (
    router,
    recording,
    corba,
    lb,
    events,
    billing,
    billing_run,
    metering_poll,
    metering_backfill,
    metering_store,
    reconcile,
    payment,
    security,
)

if __name__ == "__main__":
    for benchmark in BENCHMARKS:
        print(f"wrote {benchmark.main()}")
