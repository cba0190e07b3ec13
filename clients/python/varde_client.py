#!/usr/bin/env python3
"""A Varde client in Python, written from proto/proto/varde/v1/*.proto and proto/testdata alone.

    python varde_client.py ENDPOINT HOSPITAL_KEY_PEM [--ca-file CA_PEM] [--proto-dir DIR]
        [--vectors FILE]

ENDPOINT is https://HOST:PORT for a node serving TLS (the default; --ca-file names the CA
certificate that signed the node's certificate, e.g. DATA_DIR/tls/ca.pem of `varde dev`), or
http://HOST:PORT for a node configured for plaintext on loopback.

1. Recomputes every vector of proto/testdata/signing-vectors.json (signing input, digest,
   signature, transaction id, public key) and exits 1 on the first mismatch.
2. Generates the gRPC stubs from the proto files at run time (grpc_tools.protoc, temp dir).
3. Builds an AnchorRecord for the demo hospital, signs it with the varde-tx-v1 scheme of
   transaction.proto using the hospital's PKCS#8 PEM key, submits it with SubmitAndWait, and
   exits 0 only if the receipt says applied.
4. Recomputes every vector of proto/testdata/query-signing-vectors.json (varde-query-v2 of
   query_service.proto), then reads the anchor back with a signed GetTransaction: it must come
   back committed with its body, while the same request unsigned, and the signed one sent a
   second time (a replay), are refused with UNAUTHENTICATED.
5. Checks the anchor's inclusion proof (the leaf is its transaction id and its receipt's hash,
   proof.proto), and a consistency proof from an earlier block's ledger
   tree, with its own RFC 9162 verification against the block headers' `ledger_size` and
   `ledger_root`. The last line on stdout is a JSON object with the transaction id and the
   record id.
"""

import argparse
import hashlib
import importlib
import json
import os
import struct
import subprocess
import sys
import tempfile
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_PROTO_DIR = os.path.join(REPOSITORY, "proto", "proto")
DEFAULT_VECTORS = os.path.join(REPOSITORY, "proto", "testdata", "signing-vectors.json")
DEFAULT_QUERY_VECTORS = os.path.join(
    REPOSITORY, "proto", "testdata", "query-signing-vectors.json"
)

# The demo hospital of `varde dev` (Oslo universitetssykehus HF).
HOSPITAL_ORG_NUMBER = "993467049"
DOMAIN = b"varde-tx-v1"
QUERY_DOMAIN = b"varde-query-v2"


def raw_public_key(private_key: Ed25519PrivateKey) -> bytes:
    """The 32-byte Ed25519 public key (RFC 8032 encoding)."""
    return private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def load_vectors(path: str) -> list:
    """The `vectors` of a test-vector file; exits if there are none."""
    with open(path, encoding="utf-8") as handle:
        vectors = json.load(handle)["vectors"]
    if not vectors:
        sys.exit(f"FAIL: no vectors in {path}")
    return vectors


def query_signing_input(
    chain_id: str, method: str, signed_at_unix_ms: int, nonce: bytes, public_key: bytes,
    request_without_auth: bytes,
) -> bytes:
    """"varde-query-v2" || 0x00 || u16be chain id || u16be method || i64be time || u8 nonce
    length || nonce || caller key || the request encoded without its auth field."""
    chain = chain_id.encode("utf-8")
    method_bytes = method.encode("ascii")
    if not 16 <= len(nonce) <= 32:
        raise ValueError("the nonce must be 16 to 32 bytes")
    return (
        QUERY_DOMAIN + b"\x00"
        + struct.pack(">H", len(chain)) + chain
        + struct.pack(">H", len(method_bytes)) + method_bytes
        + struct.pack(">q", signed_at_unix_ms)
        + bytes([len(nonce)]) + nonce
        + public_key + request_without_auth
    )


def sign_query(private_key: Ed25519PrivateKey, chain_id: str, method: str, request, stubs):
    """Fills `request.auth` (varde-query-v2) with a fresh nonce and the current time."""
    public_key = raw_public_key(private_key)
    request.ClearField("auth")
    signed_at = int(time.time() * 1000)
    nonce = os.urandom(16)
    digest = hashlib.sha256(
        query_signing_input(
            chain_id, method, signed_at, nonce, public_key, request.SerializeToString()
        )
    ).digest()
    request.auth.CopyFrom(
        stubs["query_service"].RequestAuthentication(
            caller_public_key=public_key,
            signed_at_unix_ms=signed_at,
            signature=private_key.sign(digest),
            nonce=nonce,
        )
    )
    return request


def check_query_vectors(path: str) -> int:
    vectors = load_vectors(path)
    for vector in vectors:
        name = vector["description"]
        key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(vector["key_seed_hex"]))
        public_key = raw_public_key(key)
        signing = query_signing_input(
            vector["chain_id"],
            vector["method"],
            vector["signed_at_unix_ms"],
            bytes.fromhex(vector["nonce_hex"]),
            public_key,
            bytes.fromhex(vector["request_without_auth_hex"]),
        )
        digest = hashlib.sha256(signing).digest()
        checks = [
            ("public key", public_key.hex(), vector["public_key_hex"]),
            ("signing input", signing.hex(), vector["signing_input_hex"]),
            ("digest", digest.hex(), vector["digest_hex"]),
            ("signature", key.sign(digest).hex(), vector["signature_hex"]),
        ]
        for what, computed, expected in checks:
            if computed != expected:
                sys.exit(f"FAIL [{name}]: {what}\n  computed {computed}\n  expected {expected}")
    return len(vectors)


def signing_input(chain_id: str, public_key: bytes, body: bytes) -> bytes:
    """"varde-tx-v1" || 0x00 || u16be(len(chain_id as UTF-8)) || chain_id || public_key || body."""
    chain = chain_id.encode("utf-8")
    if len(chain) > 0xFFFF:
        raise ValueError("chain id longer than 65535 bytes")
    if len(public_key) != 32:
        raise ValueError("public key must be 32 bytes")
    return DOMAIN + b"\x00" + struct.pack(">H", len(chain)) + chain + public_key + body


def sign(private_key: Ed25519PrivateKey, chain_id: str, body: bytes):
    """Returns (public key, signature, transaction id) for `body` on `chain_id`."""
    public_key = raw_public_key(private_key)
    digest = hashlib.sha256(signing_input(chain_id, public_key, body)).digest()
    # Pure Ed25519 over the 32-byte digest as the message; the transaction id is the digest.
    return public_key, private_key.sign(digest), digest


def check_vectors(path: str) -> int:
    vectors = load_vectors(path)
    for vector in vectors:
        name = vector["description"]
        key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(vector["key_seed_hex"]))
        body = bytes.fromhex(vector["body_hex"])
        chain_id = vector["chain_id"]
        if chain_id.encode("utf-8").hex() != vector["chain_id_utf8_hex"]:
            sys.exit(f"FAIL [{name}]: chain id UTF-8 bytes differ")
        public_key, signature, transaction_id = sign(key, chain_id, body)
        checks = [
            ("public key", public_key.hex(), vector["public_key_hex"]),
            (
                "signing input",
                signing_input(chain_id, public_key, body).hex(),
                vector["signing_input_hex"],
            ),
            ("digest", transaction_id.hex(), vector["digest_hex"]),
            ("signature", signature.hex(), vector["signature_hex"]),
            ("transaction id", transaction_id.hex(), vector["transaction_id_hex"]),
        ]
        for what, computed, expected in checks:
            if computed != expected:
                sys.exit(
                    f"FAIL [{name}]: {what} mismatch\n  computed {computed}\n  expected {expected}"
                )
        # The vector's signature must also verify under the vector's public key.
        Ed25519PublicKey.from_public_bytes(public_key).verify(
            bytes.fromhex(vector["signature_hex"]), transaction_id
        )
        print(f"ok   signing vector: {name}")
    return len(vectors)


def generate_stubs(proto_dir: str, out_dir: str):
    """Compiles every proto file under proto_dir/varde/v1 into out_dir and imports the modules."""
    sources = sorted(
        os.path.join("varde", "v1", name)
        for name in os.listdir(os.path.join(proto_dir, "varde", "v1"))
        if name.endswith(".proto")
    )
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{proto_dir}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *sources,
    ]
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        sys.exit(f"FAIL: protoc: {completed.stderr}")
    sys.path.insert(0, out_dir)
    modules = {}
    for name in ("transaction", "state", "query_service", "ledger_service", "node_service"):
        modules[name] = importlib.import_module(f"varde.v1.{name}_pb2")
    for name in ("ledger_service", "node_service"):
        modules[name + "_grpc"] = importlib.import_module(f"varde.v1.{name}_pb2_grpc")
    return modules


def load_ed25519_pem(pem: bytes) -> Ed25519PrivateKey:
    """Loads an Ed25519 key from PKCS#8 PEM (RFC 8410), the form Varde's key files take."""
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        sys.exit("FAIL: the key file does not hold an Ed25519 key")
    return key


def open_channel(endpoint: str, ca_file):
    """A channel to ENDPOINT: TLS trusting only CA_FILE for https://, plaintext for http://."""
    import grpc

    if endpoint.startswith("https://"):
        if not ca_file:
            sys.exit(
                f"FAIL: {endpoint} is served over TLS: give --ca-file with the CA certificate "
                "that signed the node's certificate (varde dev: DATA_DIR/tls/ca.pem)"
            )
        with open(ca_file, "rb") as handle:
            credentials = grpc.ssl_channel_credentials(root_certificates=handle.read())
        return grpc.secure_channel(endpoint.removeprefix("https://"), credentials)
    if endpoint.startswith("http://"):
        return grpc.insecure_channel(endpoint.removeprefix("http://"))
    sys.exit(f"FAIL: the endpoint must start with https:// or http://, got {endpoint}")


def submit_anchor(endpoint: str, ca_file, key_path: str, stubs) -> int:
    with open(key_path, "rb") as handle:
        private_key = load_ed25519_pem(handle.read())

    with open_channel(endpoint, ca_file) as channel:
        node = stubs["node_service_grpc"].NodeStub(channel)
        ledger = stubs["ledger_service_grpc"].LedgerStub(channel)
        chain_id = node.Status(stubs["node_service"].StatusRequest(), timeout=10).chain_id

        transaction = stubs["transaction"]
        now_ms = int(time.time() * 1000)
        record_id = f"python-{now_ms}-{os.getpid()}"
        content = f"python client record {record_id}".encode()
        body = transaction.TransactionBody(
            chain_id=chain_id,
            expires_at_unix_ms=now_ms + 600_000,
            nonce=os.urandom(16),
            anchor_record=transaction.AnchorRecord(
                custodian_org_number=HOSPITAL_ORG_NUMBER,
                record_id=record_id,
                subject_pseudonym=hashlib.sha256(b"python client patient").digest(),
                category_code="discharge-summary",
                location_uri=f"https://ehr.example.invalid/{record_id}",
                content_sha256=hashlib.sha256(content).digest(),
                confidentiality=transaction.CONFIDENTIALITY_NORMAL,
                created_at_unix_ms=now_ms,
            ),
        ).SerializeToString()
        public_key, signature, transaction_id = sign(private_key, chain_id, body)

        request = stubs["ledger_service"].SubmitAndWaitRequest(
            transaction=transaction.SignedTransaction(
                body=body, signer_public_key=public_key, signature=signature
            ),
            timeout_ms=30_000,
        )
        response = ledger.SubmitAndWait(request, timeout=40)
        read_back(ledger, stubs, private_key, chain_id, transaction_id, body)
        check_ledger_proofs(
            ledger, stubs, private_key, chain_id, transaction_id, response.receipt
        )

    if response.transaction_id != transaction_id:
        sys.exit(
            f"FAIL: node's transaction id {response.transaction_id.hex()} "
            f"!= computed {transaction_id.hex()}"
        )
    receipt = response.receipt
    outcome = receipt.WhichOneof("outcome")
    if outcome != "applied":
        sys.exit(f"FAIL: receipt outcome {outcome}: {receipt}")
    print(f"ok   anchor applied at height {receipt.height}")
    print(
        json.dumps(
            {
                "transaction_id": transaction_id.hex(),
                "record_id": record_id,
                "custodian": HOSPITAL_ORG_NUMBER,
                "height": receipt.height,
            }
        )
    )
    return 0


def read_back(ledger, stubs, private_key, chain_id, transaction_id, body):
    """A signed GetTransaction finds the anchor with its body; unsigned or replayed, refused."""
    import grpc

    method = "/varde.v1.Ledger/GetTransaction"
    request = sign_query(
        private_key,
        chain_id,
        method,
        stubs["ledger_service"].GetTransactionRequest(transaction_id=transaction_id),
        stubs,
    )
    found = ledger.GetTransaction(request, timeout=10)
    if found.status != stubs["ledger_service"].TRANSACTION_STATUS_COMMITTED:
        sys.exit(f"FAIL: the anchor reads back with status {found.status}")
    if found.withheld or found.transaction.body != body:
        sys.exit("FAIL: the anchor's own signer does not get its body back")
    print("ok   signed GetTransaction returns the committed anchor")
    unsigned = stubs["ledger_service"].GetTransactionRequest(transaction_id=transaction_id)
    for what, attempt in [("an unsigned", unsigned), ("a replayed", request)]:
        try:
            ledger.GetTransaction(attempt, timeout=10)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.UNAUTHENTICATED:
                sys.exit(f"FAIL: {what} read got {error.code()}, not UNAUTHENTICATED")
            print(f"ok   {what} read is refused: UNAUTHENTICATED")
            continue
        sys.exit(f"FAIL: {what} read was answered")


# RFC 9162 §2.1: the ledger tree's hashes, and the proof checks of §2.1.3.2 and §2.1.4.2.
def rfc9162_leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def rfc9162_node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def rfc9162_verify_inclusion(leaf, index, size, path, root) -> bool:
    if index >= size:
        return False
    fn, sn, r = index, size - 1, rfc9162_leaf(leaf)
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = rfc9162_node(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = rfc9162_node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def rfc9162_verify_consistency(first, second, path, first_root, second_root) -> bool:
    if first > second:
        return False
    if first == second:
        return not path and first_root == second_root
    if first == 0:
        return not path
    path = list(path)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    if not path:
        return False
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = rfc9162_node(c, fr)
            sr = rfc9162_node(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = rfc9162_node(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root


def receipt_hash(receipt) -> bytes:
    """SHA-256("varde-receipt-v1" || 0x00 || the encoded receipt) of proof.proto."""
    encoded = receipt.SerializeToString(deterministic=True)
    return hashlib.sha256(b"varde-receipt-v1\x00" + encoded).digest()


def check_ledger_proofs(ledger, stubs, private_key, chain_id, transaction_id, receipt):
    """The anchor's inclusion proof, and a consistency proof from an earlier block's ledger tree,
    verify under this file's own RFC 9162 code against the block headers; with a bit changed they
    do not. The proven leaf is the transaction id and the hash of the receipt SubmitAndWait gave
    (proof.proto), so the proof shows what the transaction did."""
    service = stubs["ledger_service"]
    height = receipt.height

    def signed(method, request):
        return sign_query(private_key, chain_id, f"/varde.v1.Ledger/{method}", request, stubs)

    def header_at(at):
        request = signed("GetBlock", service.GetBlockRequest(height=at))
        return ledger.GetBlock(request, timeout=10).header

    header = header_at(height)
    proof = ledger.GetInclusionProof(
        signed(
            "GetInclusionProof",
            service.GetInclusionProofRequest(
                transaction_id=transaction_id, tree_size=header.ledger_size
            ),
        ),
        timeout=10,
    )
    path = list(proof.audit_path)
    index, size = proof.leaf_index, proof.tree_size
    if proof.receipt_hash != receipt_hash(receipt):
        sys.exit("FAIL: the node's receipt hash is not the hash of the receipt it gave")
    leaf = transaction_id + receipt_hash(receipt)
    if size != header.ledger_size or not rfc9162_verify_inclusion(
        leaf, index, size, path, header.ledger_root
    ):
        sys.exit("FAIL: the inclusion proof does not verify against the block header")
    if path:
        bent = [bytes([path[0][0] ^ 1]) + path[0][1:]] + path[1:]
        if rfc9162_verify_inclusion(leaf, index, size, bent, header.ledger_root):
            sys.exit("FAIL: a changed inclusion proof still verifies")
    other = type(receipt)()
    other.CopyFrom(receipt)
    other.index ^= 1
    if rfc9162_verify_inclusion(
        transaction_id + receipt_hash(other), index, size, path, header.ledger_root
    ):
        sys.exit("FAIL: the inclusion proof also verifies with another receipt")
    print(f"ok   inclusion proof of leaf {index} in {size} with its receipt verified (RFC 9162)")
    earlier = next(
        (
            h
            for h in (header_at(at) for at in range(1, height))
            if 0 < h.ledger_size < header.ledger_size
        ),
        None,
    )
    if earlier is None:
        sys.exit("FAIL: no earlier block has a smaller ledger tree")
    answer = ledger.GetConsistencyProof(
        signed(
            "GetConsistencyProof",
            service.GetConsistencyProofRequest(
                first_size=earlier.ledger_size, second_size=header.ledger_size
            ),
        ),
        timeout=10,
    )
    first, second, path = answer.first_size, answer.second_size, list(answer.path)
    if (first, second) != (earlier.ledger_size, header.ledger_size) or not (
        rfc9162_verify_consistency(first, second, path, earlier.ledger_root, header.ledger_root)
    ):
        sys.exit("FAIL: the consistency proof does not verify against the block headers")
    bent = [bytes([path[-1][0] ^ 1]) + path[-1][1:]] + path[:-1] if path else path
    if path and rfc9162_verify_consistency(
        first, second, bent, earlier.ledger_root, header.ledger_root
    ):
        sys.exit("FAIL: a changed consistency proof still verifies")
    print(f"ok   consistency proof {first} -> {second} verified (RFC 9162)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("endpoint", help="gRPC endpoint, e.g. https://127.0.0.1:50051")
    parser.add_argument("key", help="the hospital's PKCS#8 PEM key (DATA_DIR/keys/hospital.pem)")
    parser.add_argument(
        "--ca-file",
        help="PEM CA certificate the node's TLS certificate is signed by (for https://)",
    )
    parser.add_argument("--proto-dir", default=DEFAULT_PROTO_DIR)
    parser.add_argument("--vectors", default=DEFAULT_VECTORS)
    parser.add_argument("--query-vectors", default=DEFAULT_QUERY_VECTORS)
    arguments = parser.parse_args()

    count = check_vectors(arguments.vectors)
    print(f"ok   {count} signing vectors recomputed")
    count = check_query_vectors(arguments.query_vectors)
    print(f"ok   {count} query signing vectors recomputed")
    with tempfile.TemporaryDirectory(prefix="varde-stubs-") as out_dir:
        stubs = generate_stubs(arguments.proto_dir, out_dir)
        return submit_anchor(arguments.endpoint, arguments.ca_file, arguments.key, stubs)


if __name__ == "__main__":
    sys.exit(main())
