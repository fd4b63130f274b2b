"""Run every benchmark: ``python -m benchmarks`` (``make bench``)."""

from benchmarks import (
    billing,
    billing_run,
    corba,
    lb,
    metering_poll,
    reconcile,
    recording,
    router,
)

BENCHMARKS = (router, recording, corba, lb, billing, billing_run, metering_poll, reconcile)

if __name__ == "__main__":
    for benchmark in BENCHMARKS:
        print(f"wrote {benchmark.main()}")
