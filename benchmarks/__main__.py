"""Run every benchmark: ``python -m benchmarks`` (``make bench``)."""

from benchmarks import billing, corba, events, lb, recording, router

if __name__ == "__main__":
    print(f"wrote {router.main()}")
    print(f"wrote {recording.main()}")
    print(f"wrote {corba.main()}")
    print(f"wrote {lb.main()}")
    print(f"wrote {billing.main()}")
    print(f"wrote {events.main()}")
