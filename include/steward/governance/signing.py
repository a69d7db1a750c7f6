"""Ed25519 signatures over the ledger head, in OpenSSH's SSHSIG format (ADR 0017).

Whoever can write the state volume can rewrite every ledger line and recompute every hash: the chain alone
proves order, not authorship. A checkpoint signs "this engagement's ledger ended at entry N with hash H"
with a key that never touches the state volume (an Airflow connection or secrets backend). An auditor checks
it with a standard tool, no steward code:

    printf 'steward ledger churn_telco seq 7 head 3f2a...\\n' |
        ssh-keygen -Y verify -f allowed_signers -I steward -n steward-ledger -s 7.sig

The SSHSIG blob is built here with `cryptography` (PROTOCOL.sshsig): OpenSSH signs a hash of the message,
so the blob carries the hash algorithm; the signature is over
"SSHSIG" || string(namespace) || string(reserved) || string(hash_alg) || string(H(message)).
"""

from __future__ import annotations

import base64
import hashlib
import struct
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

NAMESPACE = "steward-ledger"
IDENTITY = "steward"  # the principal in allowed_signers
HASH_ALG = "sha512"
_MAGIC = b"SSHSIG"
_BEGIN, _END = "-----BEGIN SSH SIGNATURE-----", "-----END SSH SIGNATURE-----"


class SigningKeyError(ValueError):
    """The configured key cannot sign (not a private key, not Ed25519, encrypted): the message never
    contains the key itself."""


def load_private_key(text: str) -> Ed25519PrivateKey:
    """An Ed25519 private key in OpenSSH ("-----BEGIN OPENSSH PRIVATE KEY-----") or PKCS#8 PEM form."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    data = text.strip().encode() + b"\n"
    loader = serialization.load_ssh_private_key if b"OPENSSH PRIVATE KEY" in data else serialization.load_pem_private_key
    try:
        key = loader(data, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"the signing key could not be read ({type(exc).__name__}); an unencrypted Ed25519 "
                              "private key in OpenSSH or PEM form is expected") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"the signing key is a {type(key).__name__}, not Ed25519")
    return key


def public_line(key: Ed25519PrivateKey) -> str:
    """The public half as one OpenSSH line: `ssh-ed25519 AAAA...`."""
    from cryptography.hazmat.primitives import serialization

    return key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def fingerprint(public: str) -> str:
    """What `ssh-keygen -l` prints for the key: SHA256:<unpadded base64>."""
    blob = base64.b64decode(public.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def allowed_signers_line(public: str) -> str:
    return f'{IDENTITY} namespaces="{NAMESPACE}" {" ".join(public.split()[:2])}'


def checkpoint_message(engagement_id: str, seq: int, head: str) -> bytes:
    """The exact bytes signed for "the ledger of `engagement_id` ended at entry `seq` whose hash is `head`"."""
    return f"steward ledger {engagement_id} seq {seq} head {head}\n".encode()


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _signed_data(message: bytes) -> bytes:
    digest = hashlib.sha512(message).digest()
    return _MAGIC + _string(NAMESPACE.encode()) + _string(b"") + _string(HASH_ALG.encode()) + _string(digest)


def sign(key: Ed25519PrivateKey, message: bytes) -> str:
    """An armored SSH signature of `message`, as `ssh-keygen -Y sign -n steward-ledger` writes it."""
    public_blob = base64.b64decode(public_line(key).split()[1])
    signature = _string(b"ssh-ed25519") + _string(key.sign(_signed_data(message)))
    blob = (_MAGIC + struct.pack(">I", 1) + _string(public_blob) + _string(NAMESPACE.encode()) + _string(b"")
            + _string(HASH_ALG.encode()) + _string(signature))
    body = base64.b64encode(blob).decode()
    return "\n".join([_BEGIN, *(body[i:i + 70] for i in range(0, len(body), 70)), _END]) + "\n"


def verify(public: str, message: bytes, armored: str) -> bool:
    """True when `armored` is a steward-ledger signature of `message` by the key `public` (an OpenSSH line)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        blob = base64.b64decode("".join(armored.strip().splitlines()[1:-1]))
        fields = _read_fields(blob)
    except (ValueError, IndexError, struct.error):
        return False
    version, signer, namespace, _reserved, hash_alg, signature = fields
    if version != 1 or namespace != NAMESPACE.encode() or hash_alg != HASH_ALG.encode():
        return False
    expected = base64.b64decode(public.split()[1])
    if signer != expected:
        return False
    kind, raw = _split_strings(signature)
    if kind != b"ssh-ed25519":
        return False
    raw_public = _split_strings(expected)[1]
    try:
        Ed25519PublicKey.from_public_bytes(raw_public).verify(raw, _signed_data(message))
    except InvalidSignature:
        return False
    return True


def _read_fields(blob: bytes) -> tuple[int, bytes, bytes, bytes, bytes, bytes]:
    if not blob.startswith(_MAGIC):
        raise ValueError("not an SSHSIG blob")
    (version,) = struct.unpack(">I", blob[6:10])
    rest, out = blob[10:], []
    for _ in range(5):
        (n,) = struct.unpack(">I", rest[:4])
        out.append(rest[4:4 + n])
        rest = rest[4 + n:]
    return version, out[0], out[1], out[2], out[3], out[4]


def _split_strings(blob: bytes) -> list[bytes]:
    out = []
    while blob:
        (n,) = struct.unpack(">I", blob[:4])
        out.append(blob[4:4 + n])
        blob = blob[4 + n:]
    return out
