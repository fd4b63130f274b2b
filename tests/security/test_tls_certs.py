"""``powerbus certs``: the development CA, SPIFFE URI SANs, 0600 keys; identities from them."""

from __future__ import annotations

import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store
from typer.testing import CliRunner

from powerbus.bus.cli import app
from powerbus.bus.kernel.errors import ConfigError
from powerbus.bus.kernel.identity import name_from_uri
from powerbus.bus.kernel.tls import TlsFiles, check_plaintext_listen, is_loopback


def test_init_and_issue_write_spiffe_certificates_with_private_keys(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["certs", "init", "--dir", str(tmp_path)]).exit_code == 0
    result = runner.invoke(
        app, ["certs", "issue", "node", "echo-1", "--dir", str(tmp_path), "--host", "10.0.0.7"]
    )
    assert result.exit_code == 0, result.output
    for key in ("ca.key", "node-echo-1.key"):
        assert stat.S_IMODE((tmp_path / key).stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate((tmp_path / "node-echo-1.pem").read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    uris = sans.get_values_for_type(x509.UniformResourceIdentifier)
    assert uris == ["spiffe://powerbus/node/echo-1"]
    assert name_from_uri(uris[0]) == "node/echo-1"
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    assert {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)} == {
        "127.0.0.1",
        "10.0.0.7",
    }
    # The CA really signed it: an ssl context trusting only the CA accepts the chain.
    files = TlsFiles(
        cert=tmp_path / "node-echo-1.pem", key=tmp_path / "node-echo-1.key", ca=tmp_path / "ca.pem"
    )
    assert files.load()[2] == (tmp_path / "ca.pem").read_bytes()
    context = ssl.create_default_context(cafile=tmp_path / "ca.pem")
    assert context.cert_store_stats()["x509_ca"] == 1


def test_issued_chains_pass_strict_rfc5280_verification(tmp_path: Path) -> None:
    """Python 3.13 verifies with VERIFY_X509_STRICT by default; cryptography's verifier is
    as strict (it wants the key identifiers), so the chain must pass it as server and
    client."""
    runner = CliRunner()
    assert runner.invoke(app, ["certs", "init", "--dir", str(tmp_path)]).exit_code == 0
    assert (
        runner.invoke(app, ["certs", "issue", "bus", "main", "--dir", str(tmp_path)]).exit_code == 0
    )
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.pem").read_bytes())
    leaf = x509.load_pem_x509_certificate((tmp_path / "bus-main.pem").read_bytes())
    policy = PolicyBuilder().store(Store([ca]))
    assert policy.build_server_verifier(x509.DNSName("localhost")).verify(leaf, [])[-1] == ca
    client = policy.build_client_verifier().verify(leaf, [])
    assert client.chain[-1] == ca


def test_certs_refuse_a_second_ca_and_a_bad_name(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["certs", "init", "--dir", str(tmp_path)]).exit_code == 0
    again = runner.invoke(app, ["certs", "init", "--dir", str(tmp_path)])
    assert again.exit_code == 1 and "a CA exists already" in again.output
    bad = runner.invoke(app, ["certs", "issue", "node", "a/b", "--dir", str(tmp_path)])
    assert bad.exit_code == 1 and "name" in bad.output
    none = runner.invoke(app, ["certs", "issue", "bus", "x", "--dir", str(tmp_path / "nope")])
    assert none.exit_code == 1 and "powerbus certs init" in none.output


def test_tls_settings_must_be_complete_and_match(tmp_path: Path) -> None:
    runner = CliRunner()
    runner.invoke(app, ["certs", "init", "--dir", str(tmp_path)])
    runner.invoke(app, ["certs", "issue", "bus", "a", "--dir", str(tmp_path)])
    runner.invoke(app, ["certs", "issue", "bus", "b", "--dir", str(tmp_path)])
    assert TlsFiles.from_settings(cert=None, key=None, ca=None) is None
    with pytest.raises(ConfigError, match="tls_key: required"):
        TlsFiles.from_settings(cert=tmp_path / "bus-a.pem", key=None, ca=None)
    with pytest.raises(ConfigError, match="not a certificate and its key"):
        TlsFiles.from_settings(cert=tmp_path / "bus-a.pem", key=tmp_path / "bus-b.key", ca=None)
    with pytest.raises(ConfigError, match="cannot read"):
        TlsFiles.from_settings(cert=tmp_path / "none.pem", key=tmp_path / "bus-b.key", ca=None)


def test_plaintext_listen_is_loopback_only_unless_insecure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3")
    check_plaintext_listen("grpc", "127.0.0.5", insecure=False)
    with pytest.raises(ConfigError, match=r"refusing to serve plaintext on 0\.0\.0\.0"):
        check_plaintext_listen("grpc", "0.0.0.0", insecure=False)
    check_plaintext_listen("grpc", "0.0.0.0", insecure=True)
    assert "INSECURE" in caplog.text


def test_config_check_reads_the_tls_files_as_a_start_would(tmp_path: Path) -> None:
    runner = CliRunner()
    runner.invoke(app, ["certs", "init", "--dir", str(tmp_path)])
    runner.invoke(app, ["certs", "issue", "bus", "main", "--dir", str(tmp_path)])
    runner.invoke(app, ["certs", "issue", "node", "echo-1", "--dir", str(tmp_path)])
    good = tmp_path / "good.toml"
    good.write_text(
        f'[bus]\ntls_cert = "{tmp_path}/bus-main.pem"\ntls_key = "{tmp_path}/bus-main.key"\n'
        f'tls_ca = "{tmp_path}/ca.pem"\n[node]\nid = "echo-1"\n'
        f'tls_cert = "{tmp_path}/node-echo-1.pem"\ntls_key = "{tmp_path}/node-echo-1.key"\n'
    )
    assert runner.invoke(app, ["config", "check", str(good)]).exit_code == 0
    mixed = tmp_path / "mixed.toml"
    mixed.write_text(
        f'[bus]\ntls_cert = "{tmp_path}/bus-main.pem"\ntls_key = "{tmp_path}/node-echo-1.key"\n'
    )
    result = runner.invoke(app, ["config", "check", str(mixed)])
    assert result.exit_code == 1
    assert "not a certificate and its key" in result.output
