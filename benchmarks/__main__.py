"""Run every benchmark: ``python -m benchmarks`` (``make bench``)."""

from benchmarks import billing, corba, lb, metering_poll, payment, reconcile, recording, router

BENCHMARKS = (router, recording, corba, lb, billing, metering_poll, reconcile, payment)

if __name__ == "__main__":
    for benchmark in BENCHMARKS:
        print(f"wrote {benchmark.main()}")
