"""The ledger must detect every kind of tampering and survive concurrent writers."""

from __future__ import annotations

import json
import multiprocessing as mp

import pytest

from steward.governance import ledger
from steward.settings import StewardPaths


def _fill(paths: StewardPaths, n: int = 5) -> list[str]:
    reports = []
    for i in range(n):
        report = paths.artifacts / "eng" / f"2026-03-0{i + 1}" / "report.html"
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(f"<p>night {i}</p>")
        reports.append(str(report))
        ledger.append(paths, "eng", "run", logical_date=f"2026-03-0{i + 1}", record={"night": i, "outcome": "keep"},
                      artifacts=ledger.hash_artifacts(paths, [report]))
    return reports


def _problem(paths) -> str:
    result = ledger.verify(paths, "eng")
    assert not result.ok
    return result.problems[0]


def _lines(paths):
    return ledger.ledger_path(paths, "eng").read_bytes().splitlines(keepends=True)


def _write(paths, lines):
    ledger.ledger_path(paths, "eng").write_bytes(b"".join(lines))


def test_intact_ledger_verifies(paths):
    _fill(paths)
    result = ledger.verify(paths, "eng")
    assert result.ok, result.problems
    assert result.entries == 5


def test_chain_is_checkable_with_sha256_of_the_line(paths):
    import hashlib

    _fill(paths, 2)
    first, second = _lines(paths)
    assert json.loads(second)["prev"] == hashlib.sha256(first.rstrip(b"\n")).hexdigest()


def test_flipped_byte_in_a_record_is_detected(paths):
    _fill(paths)
    lines = _lines(paths)
    lines[1] = lines[1].replace(b'"outcome":"keep"', b'"outcome":"kept"')
    _write(paths, lines)
    assert "line 3" in _problem(paths)  # entry 2 changed, so entry 3's prev no longer matches


def test_flipped_byte_in_the_last_record_is_detected_by_the_head(paths):
    _fill(paths)
    lines = _lines(paths)
    lines[-1] = lines[-1].replace(b'"night":4', b'"night":5')
    _write(paths, lines)
    assert "head file" in _problem(paths)


def test_changed_referenced_report_is_detected(paths):
    reports = _fill(paths)
    with open(reports[2], "r+b") as fh:
        fh.seek(3)
        fh.write(b"X")
    problem = _problem(paths)
    assert "line 3" in problem and "report.html changed" in problem


def test_deleted_entry_is_detected(paths):
    _fill(paths)
    lines = _lines(paths)
    del lines[2]
    _write(paths, lines)
    assert "line 3" in _problem(paths) and "removed" in _problem(paths)


def test_swapped_entries_are_detected(paths):
    _fill(paths)
    lines = _lines(paths)
    lines[1], lines[2] = lines[2], lines[1]
    _write(paths, lines)
    assert "line 2" in _problem(paths)


def test_inserted_entry_is_detected(paths):
    _fill(paths)
    lines = _lines(paths)
    lines.insert(2, lines[1])
    _write(paths, lines)
    assert "line 3" in _problem(paths)


def test_removed_tail_is_detected(paths):
    _fill(paths)
    _write(paths, _lines(paths)[:-1])
    assert "entries removed from the end" in _problem(paths)


def test_truncated_mid_line_reports_exact_position(paths):
    _fill(paths, 3)
    data = ledger.ledger_path(paths, "eng").read_bytes()
    cut = len(data) - 40
    ledger.ledger_path(paths, "eng").write_bytes(data[:cut])
    start_of_last = data.rstrip(b"\n").rfind(b"\n") + 1
    problem = _problem(paths)
    assert f"line 3 (byte {start_of_last})" in problem and "truncated" in problem


def test_rerun_supersedes_artifacts_of_the_same_night(paths):
    reports = _fill(paths, 2)
    with open(reports[1], "w") as fh:
        fh.write("<p>rerun</p>")
    ledger.append(paths, "eng", "run", logical_date="2026-03-02", record={"night": 1, "rerun": True},
                  artifacts=ledger.hash_artifacts(paths, [reports[1]]))
    assert ledger.verify(paths, "eng").ok


def _writer(home: str, worker: int, count: int) -> None:
    paths = StewardPaths(home=__import__("pathlib").Path(home))
    for i in range(count):
        ledger.append(paths, "eng", "run", logical_date=f"w{worker}-{i}", record={"worker": worker, "i": i})


def test_concurrent_writers_keep_one_chain(paths):
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(paths.home), w, 25)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    result = ledger.verify(paths, "eng")
    assert result.ok, result.problems
    assert result.entries == 100
    entries = ledger.read_entries(paths, "eng")
    assert sorted((e["record"]["worker"], e["record"]["i"]) for e in entries) == [
        (w, i) for w in range(4) for i in range(25)]


def test_unknown_entry_type_is_refused(paths):
    with pytest.raises(ValueError):
        ledger.append(paths, "eng", "gossip")


def _ed25519():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from steward.governance import signing

    key = Ed25519PrivateKey.generate()
    return key, signing.public_line(key)


def test_checkpoint_signatures_are_openssh_sshsig_both_ways(tmp_path):
    """What steward signs, `ssh-keygen -Y verify` accepts; what ssh-keygen signs, steward verifies."""
    import subprocess

    from cryptography.hazmat.primitives import serialization

    from steward.governance import signing

    key, public = _ed25519()
    message = signing.checkpoint_message("eng", 3, "ab" * 32)
    (tmp_path / "allowed").write_text(signing.allowed_signers_line(public) + "\n")
    (tmp_path / "key.pub").write_text(public + "\n")
    (tmp_path / "m.sig").write_text(signing.sign(key, message))

    def ssh_verify(data: bytes) -> subprocess.CompletedProcess:
        return subprocess.run(["ssh-keygen", "-Y", "verify", "-f", "allowed", "-I", "steward", "-n", "steward-ledger",
                               "-s", "m.sig"], cwd=tmp_path, input=data, capture_output=True)

    assert ssh_verify(message).returncode == 0
    assert ssh_verify(message.replace(b"seq 3", b"seq 4")).returncode != 0
    (tmp_path / "k").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                                   serialization.NoEncryption()))
    (tmp_path / "k").chmod(0o600)
    (tmp_path / "m").write_bytes(message)
    (tmp_path / "m.sig").unlink()
    subprocess.run(["ssh-keygen", "-q", "-Y", "sign", "-f", "k", "-n", "steward-ledger", "m"], cwd=tmp_path, check=True)
    theirs = (tmp_path / "m.sig").read_text()
    assert signing.verify(public, message, theirs) and not signing.verify(public, message + b"x", theirs)
    assert not signing.verify(_ed25519()[1], message, theirs)  # another key
    assert signing.fingerprint(public) in subprocess.run(["ssh-keygen", "-l", "-f", "key.pub"], cwd=tmp_path,
                                                         capture_output=True, text=True).stdout


def test_signed_checkpoints_catch_a_full_rewrite_and_unsigned_nights_are_listed(paths):
    key, public = _ed25519()
    _fill(paths, 3)
    ledger.checkpoint(paths, "eng", key)
    assert ledger.checkpoint(paths, "eng", key) == ledger.read_checkpoints(paths, "eng")[-1]  # a retry: no second
    assert len(ledger.read_checkpoints(paths, "eng")) == 1
    ledger.append(paths, "eng", "run", logical_date="2026-03-04", record={"night": 3, "outcome": "keep"})
    ledger.checkpoint(paths, "eng", None, "no signing key: connection 'steward_ledger_signing' is not defined")
    result = ledger.verify(paths, "eng", trusted_keys=None)
    assert result.ok and result.signed_through == 3 and result.unsigned_runs == [4]
    trusted = ledger.verify(paths, "eng", trusted_keys=[public])
    assert not trusted.ok and trusted.problems[0].startswith("eng.jsonl line 4: no checkpoint signed by a trusted key")

    # the whole chain rewritten from line 2 on, head recomputed: only the checkpoint can tell
    lines, prev, out = _lines(paths), ledger.GENESIS, []
    for number, raw in enumerate(lines, start=1):
        entry = json.loads(raw)
        entry["prev"] = prev
        if number == 2:
            entry["record"]["outcome"] = "promote"
        line = ledger.canonical(entry)
        prev = ledger.sha256_bytes(line)
        out.append(line + b"\n")
    _write(paths, out)
    ledger.ledger_path(paths, "eng").with_suffix(".head").write_text(json.dumps({"seq": len(out), "hash": prev}))
    problem = ledger.verify(paths, "eng", check_artifacts=False).problems[0]
    assert problem.startswith("eng.jsonl line 3: the checkpoint signed for this entry says hash")
    # the forger drops the checkpoints: with the auditor's key nothing is covered any more
    ledger.checkpoints_path(paths, "eng").unlink()
    bare = ledger.verify(paths, "eng", check_artifacts=False, trusted_keys=[public])
    assert bare.problems[0].startswith("eng.jsonl line 1: no checkpoint signed by a trusted key covers this run entry")


def test_a_key_that_cannot_sign_is_named_without_its_value():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from steward.governance import signing

    with pytest.raises(signing.SigningKeyError, match="could not be read") as bad:
        signing.load_private_key("-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-key-AAAA\n-----END OPENSSH PRIVATE KEY-----")
    assert "not-a-key" not in str(bad.value)
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    with pytest.raises(signing.SigningKeyError, match="not Ed25519"):
        signing.load_private_key(other)


def test_the_history_database_anchor_catches_a_rewrite_of_ledger_and_checkpoints_together(paths):
    """The state volume rewritten entirely (chain, head, checkpoints re-signed by another key): the heads
    the history database kept still name the old hashes and signatures."""
    from steward import store

    key, _ = _ed25519()
    _fill(paths, 3)
    for point in (ledger.checkpoint(paths, "eng", key),):
        store.record_head(paths, "eng", point)
    anchors = store.heads_of(paths, "eng")
    assert [(a["seq"], a["key"] is not None) for a in anchors] == [(3, True)]
    assert ledger.verify(paths, "eng", anchors=anchors).ok
    store.record_head(paths, "eng", {**anchors[0], "hash": "0" * 64})  # a retry never overwrites the first
    assert store.heads_of(paths, "eng")[0]["hash"] == anchors[0]["hash"]

    ledger.checkpoints_path(paths, "eng").unlink()  # only the checkpoint is gone
    gone = ledger.verify(paths, "eng", anchors=anchors).problems[0]
    assert gone.startswith("eng.jsonl line 3: the history database holds a signed checkpoint of this entry")

    lines = _lines(paths)  # the last entry rewritten, head recomputed, re-signed with a key of their own
    entry = json.loads(lines[2])
    entry["record"]["outcome"] = "promote"
    forged = ledger.canonical(entry)
    _write(paths, [*lines[:2], forged + b"\n"])
    ledger.ledger_path(paths, "eng").with_suffix(".head").write_text(
        json.dumps({"seq": 3, "hash": ledger.sha256_bytes(forged)}))
    ledger.checkpoint(paths, "eng", _ed25519()[0])
    assert ledger.verify(paths, "eng", check_artifacts=False).ok  # the state volume agrees with itself ...
    problem = ledger.verify(paths, "eng", check_artifacts=False, anchors=anchors).problems[0]
    assert problem == (f"eng.jsonl line 3: the history database's anchor says hash {anchors[0]['hash']}, "
                       f"the ledger has {ledger.sha256_bytes(forged)}")  # ... not with the second anchor


def test_key_rotation_is_a_ledger_entry_the_old_key_vouches_for(paths, tmp_path, monkeypatch):
    """`steward audit rotate-key`: the next key is named in the ledger and that entry is signed by the
    current key, so an auditor holding only the old key trusts the new one from there on; a key that
    names itself without the old key's signature is not trusted."""
    from cryptography.hazmat.primitives import serialization
    from typer.testing import CliRunner

    from steward import store
    from steward.cli import app
    from steward.governance import signing

    old, old_public = _ed25519()
    new, new_public = _ed25519()
    _fill(paths, 2)
    store.record_head(paths, "eng", ledger.checkpoint(paths, "eng", old))
    (tmp_path / "next.pub").write_text(new_public + " ops@client\n")
    private = old.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode()
    monkeypatch.setenv("AIRFLOW_CONN_STEWARD_LEDGER_SIGNING", json.dumps({"conn_type": "generic", "password": private}))
    monkeypatch.setenv("STEWARD_ENGAGEMENTS_DIR", str(tmp_path))
    from tests.conftest import ENGAGEMENTS

    (tmp_path / "eng.yaml").write_text((ENGAGEMENTS / "churn_telco.yaml").read_text().replace(
        "id: churn_telco", "id: eng"))
    out = CliRunner().invoke(app, ["audit", "rotate-key", "eng", "--next-public-key", str(tmp_path / "next.pub"),
                                   "--reason", "yearly rotation"])
    assert out.exit_code == 0, out.output
    rotation = ledger.read_entries(paths, "eng")[-1]
    assert rotation["type"] == "key_rotation" and rotation["detail"]["to_key"] == signing.fingerprint(new_public)
    assert rotation["detail"]["from_key"] == signing.fingerprint(old_public)
    assert ledger.read_checkpoints(paths, "eng")[-1]["key"] == signing.fingerprint(old_public)  # the old key vouched
    ledger.append(paths, "eng", "run", logical_date="2026-03-06", record={"night": 5, "outcome": "keep"})
    store.record_head(paths, "eng", ledger.checkpoint(paths, "eng", new))  # the next night, signed by the new key
    result = ledger.verify(paths, "eng", trusted_keys=[old_public], anchors=store.heads_of(paths, "eng"))
    assert result.ok, result.problems
    assert result.signers == [signing.fingerprint(old_public), signing.fingerprint(new_public)]

    # a forger appends a "rotation" to a key of their own and signs it with that key: not vouched for
    rogue, rogue_public = _ed25519()
    ledger.append(paths, "eng", "key_rotation", detail={"to_public_key": rogue_public, "to_key": "x"})
    ledger.checkpoint(paths, "eng", rogue)
    problem = ledger.verify(paths, "eng", trusted_keys=[old_public]).problems[0]
    assert problem.startswith("eng.jsonl line 5: the signature of this entry's checkpoint does not verify with the "
                              "trusted key(s) given")
    again = CliRunner().invoke(app, ["audit", "rotate-key", "eng", "--next-public-key", str(tmp_path / "eng.yaml"),
                                     "--reason", "x"])
    assert again.exit_code == 2 and "must hold exactly one ssh-ed25519 public key" in " ".join(again.output.split())


def _forge(paths, entry_type="run", engagement="eng", **fields):
    """Append a correctly chained entry the way someone who can write the ledger file could: no witness."""
    target = ledger.ledger_path(paths, engagement)
    seq, prev = ledger._last_line(target)
    entry = {"seq": seq + 1, "prev": prev, "type": entry_type, "engagement": engagement, "logical_date": None,
             "at": "2026-03-09T00:00:00+00:00", "record": None, "artifacts": {}, "detail": None, **fields}
    line = ledger.canonical(entry)
    with target.open("ab") as fh:
        fh.write(line + b"\n")
    target.with_suffix(".head").write_text(json.dumps({"seq": entry["seq"], "hash": ledger.sha256_bytes(line)}))
    return entry


def test_the_signer_refuses_an_entry_it_did_not_append_until_an_operator_accepts_it(paths):
    """Issue 32: a correctly chained entry appended by anyone who can write the file was signed the next night.
    Now every append is witnessed in the store; the signer checks the entries since the last signed checkpoint
    and refuses; `accept` (an entry naming what was found, then signed) lets nights sign again."""
    from steward import store
    from steward.governance import export

    key, public = _ed25519()
    _fill(paths, 2)
    export.checkpoint_head(paths, "eng", key)
    assert [w["state"] for w in store.witnessed(paths, "eng").values()] == ["appended", "appended"]
    _forge(paths, logical_date="2026-03-03", record={"night": 2, "outcome": "promote"})
    assert ledger.verify(paths, "eng", check_artifacts=False).ok  # the chain alone cannot tell
    with pytest.raises(ledger.LedgerTamperedError, match="entry 3 \\(run 2026-03-03, .*\\) was not appended by steward"):
        export.checkpoint_head(paths, "eng", key)
    assert ledger.read_checkpoints(paths, "eng")[-1]["seq"] == 2  # nothing signed
    ledger.append(paths, "eng", "run", logical_date="2026-03-04", record={"night": 3, "outcome": "keep"})
    with pytest.raises(ledger.LedgerTamperedError):  # a real night after it does not launder it
        export.checkpoint_head(paths, "eng", key)
    # the unsigned path still records why it is unsigned, and signs nothing
    assert "signature" not in export.checkpoint_head(paths, "eng", None, "no key")
    accepted = ledger.accept(paths, "eng", reason="entry 3 written by a restore script, checked by hand",
                             actor="ops")
    assert accepted["type"] == "accept" and "entry 3 (run 2026-03-03" in accepted["detail"]["found"][0]
    point = export.checkpoint_head(paths, "eng", key)
    assert point["seq"] == accepted["seq"] and "signature" in point
    assert ledger.verify(paths, "eng", check_artifacts=False, trusted_keys=[public]).ok
    with pytest.raises(ValueError, match="nothing to accept"):
        ledger.accept(paths, "eng", reason="again", actor="ops")


def test_the_signer_refuses_a_ledger_cut_back_and_a_changed_byte(paths):
    from steward.governance import export

    key, _ = _ed25519()
    _fill(paths, 3)
    export.checkpoint_head(paths, "eng", key)
    ledger.append(paths, "eng", "run", logical_date="2026-03-04", record={"night": 3, "outcome": "keep"})
    lines = _lines(paths)
    _write(paths, lines[:-1])  # the unsigned newest entry removed, head file rewritten to match
    seq, head = ledger._last_line(ledger.ledger_path(paths, "eng"))
    ledger.ledger_path(paths, "eng").with_suffix(".head").write_text(json.dumps({"seq": seq, "hash": head}))
    with pytest.raises(ledger.LedgerTamperedError, match="the anchor saw entries 4..4 appended; the ledger ends at 3"):
        export.checkpoint_head(paths, "eng", key)
    _write(paths, lines)
    ledger.ledger_path(paths, "eng").with_suffix(".head").unlink()
    changed = _lines(paths)
    changed[3] = changed[3].replace(b'"keep"', b'"pass"')
    _write(paths, changed)
    # the newest entry edited and its head file removed: the chain alone still verifies, the witness does not
    assert ledger.verify(paths, "eng", check_artifacts=False).ok
    with pytest.raises(ledger.LedgerTamperedError, match=r"entry 4 \(run 2026-03-04, .*\) was not appended by steward "
                       r"\(it appended "):
        export.checkpoint_head(paths, "eng", key)


def test_a_run_entry_written_ahead_for_tomorrow_does_not_make_the_night_recorded(churn, paths):
    """A forged `run` entry naming tomorrow's Airflow run id made export_night think the night was recorded and
    skip writing its real outcome. Now the export fails loudly and opens an incident."""
    from steward.governance import export
    from steward.operations import incidents

    ledger.append(paths, churn.id, "run", logical_date="2026-03-01", record={"run": {"run_id": "r1"}})
    run_id = "scheduled__2026-03-02T02:00:00+00:00"
    _forge(paths, engagement=churn.id, logical_date="2026-03-02", record={"run": {"run_id": run_id}, "outcome": "keep"})
    with pytest.raises(ledger.LedgerTamperedError, match="claims this run"):
        export.export_night(churn, paths, day="2026-03-02", run={"run_id": run_id}, config_path=paths.home / "x.yaml",
                            config_hash="0" * 64, gather=lambda: pytest.fail("must not gather: it refused first"))
    opened = [i for i in incidents.list_for(paths, churn.id) if i["condition"] == "ledger"]
    assert opened and "was not appended by steward" in opened[0]["summary"]


def test_verify_names_an_engagement_whose_ledger_was_deleted(paths):
    """Issue 32: deleting an engagement's ledger (and its YAML) passed `audit verify` with no id; the anchor
    remembers every engagement it witnessed."""
    from typer.testing import CliRunner

    from steward.cli import app

    _fill(paths, 2)
    ledger.append(paths, "gone", "run", logical_date="2026-03-01", record={"night": 0})
    runner = CliRunner()
    assert runner.invoke(app, ["audit", "verify", "--chain-only"]).exit_code == 0
    ledger.ledger_path(paths, "gone").unlink()
    result = runner.invoke(app, ["audit", "verify", "--chain-only"])
    assert result.exit_code == 1 and "gone" in result.stdout and "no ledger at" in result.stdout, result.stdout


def test_audit_accept_from_the_command_line_needs_the_key_and_signs_again(paths, tmp_path, monkeypatch):
    from cryptography.hazmat.primitives import serialization
    from typer.testing import CliRunner

    from steward.cli import app
    from steward.governance import export
    from tests.conftest import ENGAGEMENTS

    key, public = _ed25519()
    _fill(paths, 2)
    export.checkpoint_head(paths, "eng", key)
    _forge(paths, logical_date="2026-03-03", record={"night": 2, "outcome": "promote"})
    monkeypatch.setenv("STEWARD_ENGAGEMENTS_DIR", str(tmp_path))
    (tmp_path / "eng.yaml").write_text((ENGAGEMENTS / "churn_telco.yaml").read_text().replace(
        "id: churn_telco", "id: eng"))
    monkeypatch.delenv("AIRFLOW_CONN_STEWARD_LEDGER_SIGNING", raising=False)
    keyless = CliRunner().invoke(app, ["audit", "accept", "eng", "--reason", "checked"])
    assert keyless.exit_code == 2 and "an acceptance is signed with the key" in " ".join(keyless.output.split())
    assert ledger.read_entries(paths, "eng")[-1]["type"] == "run"  # nothing appended without the key
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode()
    monkeypatch.setenv("AIRFLOW_CONN_STEWARD_LEDGER_SIGNING", json.dumps({"conn_type": "generic", "password": private}))
    out = CliRunner().invoke(app, ["audit", "accept", "eng", "--reason", "entry 3 restored from a backup, checked"])
    assert out.exit_code == 0, out.output
    assert "entry 3 (run 2026-03-03" in out.output
    accepted = ledger.read_entries(paths, "eng")[-1]
    assert accepted["type"] == "accept" and accepted["detail"]["reason"].startswith("entry 3 restored")
    assert ledger.read_checkpoints(paths, "eng")[-1]["seq"] == accepted["seq"]
    assert ledger.verify(paths, "eng", check_artifacts=False, trusted_keys=[public]).ok


def test_a_purge_or_rollback_entry_needs_a_trusted_signature_like_a_night(paths):
    """Issue 32: every entry type is covered, not only `run`: an unsigned purge after the last checkpoint fails
    verify with the auditor's keys, and passes once a checkpoint signed with the key covers it."""
    key, public = _ed25519()
    _fill(paths, 3)
    ledger.checkpoint(paths, "eng", key)
    ledger.append(paths, "eng", "purge", logical_date="2026-03-04", artifacts={},
                  detail={"reason": "retention: older than 365 days before 2026-03-04", "folders": []})
    result = ledger.verify(paths, "eng", trusted_keys=[public])
    assert not result.ok and "line 4: no checkpoint signed by a trusted key covers this purge entry" in result.problems[0]
    assert result.unsigned_runs == [] and result.unsigned == [4]
    ledger.checkpoint(paths, "eng", key)
    assert ledger.verify(paths, "eng", trusted_keys=[public]).ok


def test_on_postgres_a_ledger_cut_back_to_an_earlier_signed_checkpoint_fails_verify(paths, tmp_path, monkeypatch):
    """Issue 32, the production shape: the anchor is steward's own Postgres database (STEWARD_DB_URL), out of
    reach of whoever writes the state volume. Cutting the ledger back to its first signed checkpoint (ledger,
    head file and checkpoints file rewritten to agree) passes verify on the volume alone, and fails against the
    anchor with the auditor's key; deleting the ledger too names the engagement."""
    from typer.testing import CliRunner

    from steward.cli import app
    from steward.governance import export, signing
    from tests.support import postgres

    key, public = _ed25519()
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(signing.allowed_signers_line(public) + "\n")
    with postgres.scratch_database("steward_anchor") as name:
        monkeypatch.setenv("STEWARD_DB_URL", postgres.url(name).replace("+psycopg", "+psycopg2"))
        _fill(paths, 2)
        export.checkpoint_head(paths, "eng", key)
        first = _lines(paths)
        kept_points = ledger.checkpoints_path(paths, "eng").read_bytes()
        ledger.append(paths, "eng", "run", logical_date="2026-03-03", record={"night": 2, "outcome": "promote"})
        export.checkpoint_head(paths, "eng", key)
        runner = CliRunner()
        verify = ["audit", "verify", "--chain-only", "--allowed-signers", str(allowed)]
        ok = runner.invoke(app, verify)
        assert ok.exit_code == 0, (ok.stdout, ok.stderr if ok.stderr_bytes else "", repr(ok.exception))  # positive control

        _write(paths, first)  # cut back to the first checkpoint, every file on the volume agreeing
        ledger.ledger_path(paths, "eng").with_suffix(".head").write_text(json.dumps({"seq": 2, "hash": ledger.sha256_bytes(first[1][:-1])}))
        ledger.checkpoints_path(paths, "eng").write_bytes(kept_points)
        assert ledger.verify(paths, "eng", check_artifacts=False, trusted_keys=[public]).ok  # the volume agrees with itself
        cut = runner.invoke(app, verify)
        assert cut.exit_code == 1 and "history database" in cut.stdout, cut.stdout

        ledger.ledger_path(paths, "eng").unlink()
        gone = runner.invoke(app, ["audit", "verify", "--chain-only"])
        assert gone.exit_code == 1 and "eng" in gone.stdout and "no ledger at" in gone.stdout, gone.stdout
        from steward import store

        store.engine(paths).dispose()
