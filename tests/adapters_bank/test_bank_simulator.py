"""The bank simulator end to end over loopback, against a utility side served by the
package's own ProtocolServer: faults are resolved without double debits, malformed
messages are answered or cut off, and the bank's statement reconciles clean."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path

import pytest
from bank_support import ACCOUNTS, BANK, KEY, MemoryUtility

from powerbus.adapters.bank import (
    BankClient,
    Category,
    FailedPrecondition,
    KeyRing,
    LineKind,
    LineStatus,
    MessageCodec,
    PaymentChannel,
    PaymentStatus,
    ProtocolServer,
    TxnState,
    Window,
    WithholdingBatch,
    WithholdingDebit,
    collection_dispatcher,
    parse_results,
    read_statement,
    reconcile,
    render_batch,
    render_table,
)
from powerbus.adapters.bank.sim import BankSimulator, FaultPlan, SimSettings
from powerbus.bus.kernel.addresses import HostPort

DAY = dt.date(2026, 12, 4)


class Clock:
    """Bank time that starts at noon of DAY and runs with the monotonic clock."""

    def __init__(self) -> None:
        self._start = time.monotonic()

    def __call__(self) -> dt.datetime:
        return dt.datetime.combine(DAY, dt.time(12)) + dt.timedelta(
            seconds=time.monotonic() - self._start
        )


def settings(server: ProtocolServer | HostPort, tmp_path: Path, **kw: object) -> SimSettings:
    base: dict[str, object] = dict(
        bank_code=BANK,
        connect=server if isinstance(server, HostPort) else server.address,
        key=KEY,
        rate=2_000.0,
        count=120,
        accounts=(*ACCOUNTS, "3199999999"),
        seed=7,
        drop_dir=tmp_path / "drop",
        statement_interval=dt.timedelta(seconds=30),
        timeout=dt.timedelta(seconds=2),
    )
    base.update(kw)
    return SimSettings(**base)  # type: ignore[arg-type]


async def test_collections_with_faults_reconcile_clean(
    utility_server: ProtocolServer, utility: MemoryUtility, tmp_path: Path
) -> None:
    faults = FaultPlan.parse("latency=1-3,lost_reply=0.15,resend=0.5,duplicate=0.1,malformed=0.1")
    async with BankSimulator(
        settings(utility_server, tmp_path, faults=faults), clock=Clock()
    ) as bank:
        await bank.wait_sent(timeout=30)
        stats = bank.stats
        book = bank.book
    assert stats.started == 120
    assert stats.succeeded + stats.refused + stats.reversed + stats.unresolved == 120
    assert stats.unresolved == 0
    assert stats.timeouts > 0 and stats.resent > 0 and stats.reversed > 0 and stats.refused > 0
    assert stats.queried > 0  # some timeouts were settled by a status query
    assert stats.duplicates_sent > 0 and stats.duplicates_acknowledged == stats.duplicates_sent
    # Malformed messages: the frame-intact ones were answered, the others cut their own
    # connection; every class was seen by the server, and no collection was lost to them.
    assert stats.malformed_sent >= 4
    assert stats.malformed_answered == sum(
        utility_server.stats.errors[k] for k in ("MacMismatch", "EncodingError")
    )
    for kind in ("MacMismatch", "EncodingError", "FramingError", "TruncatedMessage"):
        assert utility_server.stats.errors[kind] >= 1, utility_server.stats.errors
    # Never debited twice: each serial at most once here, and it agrees with the bank.
    for serial, entry in utility.entries.items():
        txn = book.get(serial)
        assert txn is not None and txn.amount == entry.amount
        assert entry.paid_at == txn.at.replace(microsecond=0)  # bank time, not ours
        assert (entry.status is PaymentStatus.REVERSED) == bool(txn.reversal_serial)
    posted = [e for e in utility.entries.values() if e.status is PaymentStatus.POSTED]
    assert len(posted) == stats.succeeded
    # The statement the bank wrote reconciles clean against what the utility posted.
    (path,) = (tmp_path / "drop").glob("0102_COLLECTION_*.txt")
    statement = read_statement(path)
    assert statement.settlement_date == DAY
    report = reconcile(
        utility.entries.values(),
        statement,
        Window(settlement_date=DAY),
        generated_at=dt.datetime(2026, 12, 5, 2),
    )
    assert report.balanced, render_table(report)
    assert {t.category for t in report.totals} == {Category.MATCHED}
    assert report.bank_total == report.system_total == sum(e.amount for e in posted)


async def test_the_same_seed_gives_the_same_bank_book(codec: MessageCodec, tmp_path: Path) -> None:
    books = []
    for run in range(2):
        utility = MemoryUtility()
        server = ProtocolServer(codec=codec, handler=collection_dispatcher(utility, bank_code=BANK))
        async with server:
            sim = BankSimulator(
                settings(
                    server,
                    tmp_path / str(run),
                    count=40,
                    drop_dir=None,
                    faults=FaultPlan.parse("lost_reply=0.2"),
                ),
                clock=lambda: dt.datetime(2026, 12, 4, 12),
            )
            async with sim:
                await sim.wait_sent(timeout=30)
        books.append(
            sorted(
                (t.account_id, t.amount, t.status, bool(t.reversal_serial))
                for t in (sim.book.get(s) for s in utility.entries)
                if t
            )
        )
    assert books[0] == books[1] and len(books[0]) > 30


async def test_status_queries_and_statement_download_in_chunks(
    utility_server: ProtocolServer, tmp_path: Path
) -> None:
    sim = BankSimulator(settings(utility_server, tmp_path, count=700), clock=Clock())
    async with sim:
        await sim.wait_sent(timeout=30)
        host, port = sim.address.rsplit(":", 1)
        async with BankClient(
            address=HostPort(host, int(port)),
            codec=MessageCodec(KeyRing({BANK: KEY})),
            bank_code=BANK,
            timeout=dt.timedelta(seconds=2),
        ) as client:
            serial = _serials(sim)[0]
            assert (await client.query_status(serial, DAY)).state is TxnState.SUCCESS
            assert (await client.query_status("NOPE", DAY)).state is TxnState.NOT_FOUND
            downloaded = await client.fetch_statement(DAY)
            with pytest.raises(FailedPrecondition, match="2002"):
                await client.fetch_statement(DAY + dt.timedelta(days=2))
    (path,) = (tmp_path / "drop").glob("0102_COLLECTION_*.txt")
    on_disk = read_statement(path)
    assert len(path.read_bytes()) > 60_000  # more than one chunk
    assert downloaded.lines == on_disk.lines and downloaded.sha256 == on_disk.sha256
    assert downloaded.line_count == 700


def _serials(sim: BankSimulator) -> list[str]:
    return [x.bank_txn_id for x in sim.book.lines_for(DAY) if x.status is LineStatus.SUCCESS]


async def test_withholding_batches_become_result_files_and_statement_lines(
    utility_server: ProtocolServer, tmp_path: Path
) -> None:
    sim = BankSimulator(settings(utility_server, tmp_path, count=0), clock=Clock())
    inbox = tmp_path / "drop" / "withholding" / "in"
    inbox.mkdir(parents=True)
    debits = tuple(
        WithholdingDebit(
            seq=n,
            account_id=ACCOUNTS[n % len(ACCOUNTS)],
            bank_account=f"6222{n:012d}",
            account_name="李四",
            amount=2_000 + n,
            agreement_no=f"AG{n}",
        )
        for n in range(1, 31)
    )
    batch = WithholdingBatch(bank_code=BANK, batch_id="B1", batch_date=DAY, debits=debits)
    (inbox / "WH_0102_20261204_B1.txt").write_bytes(render_batch(batch))
    (inbox / "WH_0102_20261204_B2.txt").write_bytes(render_batch(batch)[:-30])
    async with sim:
        await sim.wait_sent(timeout=10)
    (result_path,) = (tmp_path / "drop" / "withholding" / "out").glob("WHR_*.txt")
    results = parse_results(result_path.read_bytes(), file_name=result_path.name)
    assert [r.seq for r in results.results] == list(range(1, 31))
    ok = [r for r in results.results if r.ok]
    assert 0 < len(ok) < 30  # a seeded share fails, as with empty accounts
    lines = read_statement(next((tmp_path / "drop").glob("0102_COLLECTION_*.txt"))).lines
    withheld = [x for x in lines if x.channel is PaymentChannel.BANK_WITHHOLDING]
    assert sorted(x.bank_txn_id for x in withheld) == sorted(r.bank_txn_id for r in ok)
    assert all(x.kind is LineKind.COLLECTION for x in withheld)
    assert (inbox / "WH_0102_20261204_B1.done").exists()
    assert (inbox / "WH_0102_20261204_B2.rejected").exists()
    assert "WH_0102_20261204_B2.txt:" in (inbox / "WH_0102_20261204_B2.reason").read_text()


async def test_a_utility_that_is_down_leaves_collections_reversed_or_in_transit(
    tmp_path: Path,
) -> None:
    # Nothing listens there: every collection times out unresolved and stays 在途.
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    sim = BankSimulator(
        settings(
            HostPort("127.0.0.1", port),
            tmp_path,
            count=5,
            max_attempts=2,
            timeout=dt.timedelta(seconds=0.5),
            connect_wait=dt.timedelta(seconds=0.3),
        ),
        clock=Clock(),
    )
    async with sim:
        await sim.wait_sent(timeout=20)
    assert sim.stats.unresolved == 5
    statement = read_statement(next((tmp_path / "drop").glob("*.txt")))
    assert {x.status for x in statement.lines} == {LineStatus.PROCESSING}
    report = reconcile(
        [], statement, Window(settlement_date=DAY), generated_at=dt.datetime(2026, 12, 5)
    )
    assert report.balanced and {t.category for t in report.totals} == {Category.IN_TRANSIT}


async def test_the_bank_waits_for_a_utility_that_starts_later(
    codec: MessageCodec, utility: MemoryUtility, tmp_path: Path
) -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    address = HostPort("127.0.0.1", port)
    sim = BankSimulator(settings(address, tmp_path, count=10, drop_dir=None), clock=Clock())
    async with sim:
        await asyncio.sleep(0.3)  # the bank is up first and dialling
        server = ProtocolServer(
            codec=codec, listen=address, handler=collection_dispatcher(utility, bank_code=BANK)
        )
        async with server:
            await sim.wait_sent(timeout=20)
    assert sim.stats.succeeded + sim.stats.refused == 10 and sim.stats.unresolved == 0
    assert len(utility.entries) == sim.stats.succeeded > 0
