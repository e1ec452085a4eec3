// Package sigstore verifies Sigstore bundles as the transparency evidence of
// TUF metadata, for devices whose C2SP tlog-policy names a Rekor log
// instead of (or besides) a shiplog ledger. It is a pure core: bytes in,
// verified values out; no network, no clock, no goroutines. It parses the
// few bundle fields it needs itself, strictly, so that the device links
// neither sigstore-go nor Rekor.
//
// A bundle (JSON of dev.sigstore.bundle.v1.Bundle, media types 0.1-0.3)
// sits beside the metadata file as <version>.<role>.json.sigstore.json or
// inside an update bundle. The parts the device checks:
//
//	{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
//	 "verificationMaterial": {"publicKey": {"hint": "<TUF key id>"},
//	  "tlogEntries": [{"logIndex": "735", "logId": {"keyId": "..."},
//	   "kindVersion": {"kind": "hashedrekord", "version": "0.0.2"},
//	   "inclusionProof": {"logIndex": "735", "treeSize": "736",
//	    "rootHash": "<base64>", "hashes": ["<base64>", ...],
//	    "checkpoint": {"envelope": "log2025-alpha1.rekor.sigstage.dev\n736\n<base64 root>\n\n— log2025-alpha1.rekor.sigstage.dev <base64 sig>\n"}},
//	   "canonicalizedBody": "<base64 of the canonical hashedrekord JSON>"}]},
//	 "messageSignature": {"messageDigest": {"algorithm": "SHA2_256", "digest": "<base64>"},
//	  "signature": "<base64>"}}
//
// Two kinds of Rekor log are supported, each named in the policy by a
// "log <vkey> [url]" line (c2sp.org/tlog-policy):
//
//   - Rekor v2 (c2sp.org/tlog-tiles): Ed25519 C2SP checkpoints whose origin
//     is the key name; vkey "<origin>+<key hash>+base64(0x01 || key)".
//     Witness cosignatures (c2sp.org/tlog-cosignature) count towards the
//     policy quorum; unknown ones are ignored. Entries are hashedrekord
//     0.0.2.
//   - Rekor v1: ECDSA P-256 checkpoints signed under the log's host name
//     with key hash SHA-256(DER SPKI)[:4]; vkey
//     "<host>+<key hash>+base64(0x02 || DER SPKI)"; origin line
//     "<host> - <tree id>" (policy.LogFor), an optional "Timestamp:"
//     extension line; the inclusion proof's index is relative to the shard.
//     Entries are hashedrekord 0.0.1. Inclusion promises (SETs) are not
//     used: the device requires an inclusion proof and a signed checkpoint.
//
// The log leaf is SHA-256(0x00 || canonicalized body) (RFC 6962). The
// entry's key must be one the TUF role lists (compared as public keys);
// certificates are accepted only as carriers of such a key and are not
// validated. Keys: ECDSA P-256 signing the SHA-256 digest, or Ed25519ph
// (RFC 8032) signing the SHA-512 digest, as Rekor v1 verifies them.
//
// Limits: bundles up to MaxBundleSize (1 MiB), MaxEntries (8) log entries,
// bodies up to MaxBodySize (64 KiB), inclusion proofs of 63 hashes,
// checkpoints of checkpoint.MaxNoteSize.
package sigstore
