package device_test

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shiplog/shiplog/client/device"
	"github.com/shiplog/shiplog/client/update"
	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/checkpoint"
	"github.com/shiplog/shiplog/evidence/evidencetest"
	"github.com/shiplog/shiplog/evidence/proof"
	"github.com/shiplog/shiplog/internal/harness"
	"github.com/shiplog/shiplog/internal/harness/kit"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

func TestUpdateInstallsAndUpgrades(t *testing.T) {
	e := start(t, 2)
	e.repo.AddTarget("targets", "fw/image.bin", []byte("firmware v2"), map[string]any{"security": true})
	e.repo.Publish()
	res := e.mustUpdate()
	if !res.Installed || e.installed("fw/image.bin") != "firmware v2" {
		t.Fatalf("upgrade: %+v", res)
	}
	if len(res.Summary.Changes) != 1 || res.Summary.Changes[0].Kind != "changed" || len(res.Summary.Evidence) == 0 {
		t.Errorf("summary: %+v", res.Summary)
	}
	if w := res.Summary.Evidence[0].Witnesses; len(w) != 2 {
		t.Errorf("evidence witnesses: %+v", w)
	}
	// Nothing new: an update changes nothing installed.
	res = e.mustUpdate()
	if res.Installed {
		t.Errorf("reinstalled: %+v", res)
	}
}

func currentTargetsFile(e *env) string {
	return harness.RoleFile("targets", e.repo.Roles["targets"].Signed.Version)
}

func TestAttackArbitraryInstallation(t *testing.T) {
	t.Run("payload", func(t *testing.T) {
		e := start(t, 2)
		e.repo.AddTarget("targets", "fw/image.bin", []byte("firmware v2"), nil)
		e.repo.Publish()
		e.serveBytes("/targets/"+harness.TargetName("fw/image.bin", []byte("firmware v2")), []byte("malware!!!!"))
		if err := e.attack(); !errors.Is(err, update.ErrTargetMismatch) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("metadata signed by an attacker", func(t *testing.T) {
		e := start(t, 2)
		e.repo.AddTarget("targets", "fw/image.bin", []byte("malware"), nil)
		e.repo.Keys["targets"] = []kit.Key{kit.NewKey()} // not the key root delegates to
		e.repo.Publish()
		err := e.attack()
		if !errors.Is(err, &metadata.ErrUnsignedMetadata{}) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestAttackEndlessData(t *testing.T) {
	endless := func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 32<<10)
		for i := 0; i < 1<<12; i++ { // 128 MiB, far beyond every limit
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
	}
	for _, name := range []string{"timestamp", "snapshot", "targets", "payload"} {
		t.Run(name, func(t *testing.T) {
			e := start(t, 2)
			e.repo.AddTarget("targets", "fw/image.bin", []byte("firmware v2"), nil)
			e.repo.Publish()
			path := map[string]string{
				"timestamp": "/metadata/timestamp.json",
				"snapshot":  fmt.Sprintf("/metadata/%d.snapshot.json", e.repo.Snapshot.Signed.Version),
				"targets":   "/metadata/" + currentTargetsFile(e),
				"payload":   "/targets/" + harness.TargetName("fw/image.bin", []byte("firmware v2")),
			}[name]
			e.serve(path, endless)
			e.attack()
		})
	}
}

func TestAttackRollback(t *testing.T) {
	t.Run("root", func(t *testing.T) {
		e := start(t, 2)
		e.repo.RotateRoot("timestamp")
		e.repo.WriteTimestamp()
		e.mustUpdate()
		// The attacker serves root v1 as version 3.
		e.serveBytes("/metadata/3.root.json", e.repo.RootBytes(1))
		if err := e.attack(); !errors.Is(err, &metadata.ErrBadVersionNumber{}) && !errors.Is(err, update.ErrUnlogged) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("timestamp", func(t *testing.T) {
		e := start(t, 2)
		old := e.repo.Read("timestamp.json")
		e.repo.WriteTimestamp()
		e.mustUpdate()
		e.serveBytes("/metadata/timestamp.json", old)
		if err := e.attack(); !errors.Is(err, &metadata.ErrBadVersionNumber{}) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("snapshot", func(t *testing.T) {
		e := start(t, 2)
		e.repo.WriteSnapshot()
		e.repo.WriteTimestamp()
		e.mustUpdate()
		// A new timestamp naming an older snapshot version.
		e.repo.Snapshot.Signed.Version -= 2
		e.repo.WriteSnapshot()
		e.repo.WriteTimestamp()
		if err := e.attack(); !errors.Is(err, &metadata.ErrBadVersionNumber{}) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("targets", func(t *testing.T) {
		e := start(t, 2)
		e.repo.AddTarget("targets", "fw/image.bin", []byte("firmware v2"), nil)
		e.repo.Publish()
		e.mustUpdate()
		// A new snapshot naming the older targets version (v2, logged).
		e.repo.Roles["targets"].Signed.Version--
		e.repo.WriteSnapshot()
		e.repo.WriteTimestamp()
		if err := e.attack(); !errors.Is(err, &metadata.ErrBadVersionNumber{}) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestAttackIndefiniteFreeze(t *testing.T) {
	for _, role := range []string{"root", "timestamp", "snapshot", "targets"} {
		t.Run(role, func(t *testing.T) {
			e := start(t, 2)
			soon := harness.Now.Add(24 * time.Hour)
			e.repo.Expires = soon
			switch role {
			case "root":
				e.repo.RotateRoot()
				e.repo.Expires = harness.Now.Add(365 * 24 * time.Hour)
				e.repo.WriteTimestamp()
			case "timestamp":
				e.repo.WriteTimestamp()
			case "snapshot":
				e.repo.WriteSnapshot()
				e.repo.Expires = harness.Now.Add(365 * 24 * time.Hour)
				e.repo.WriteTimestamp()
			case "targets":
				e.repo.AddTarget("targets", "fw/other.bin", []byte("x"), nil)
				e.repo.Publish()
				e.repo.Expires = harness.Now.Add(365 * 24 * time.Hour)
				e.repo.WriteSnapshot()
				e.repo.WriteTimestamp()
			}
			// Two days later the repository still serves the same metadata.
			e.time = harness.Now.Add(48 * time.Hour)
			if err := e.attack(); !errors.Is(err, &metadata.ErrExpiredMetadata{}) {
				t.Fatalf("got %v", err)
			}
		})
	}
}

func TestAttackMixAndMatch(t *testing.T) {
	e := start(t, 2)
	v1 := e.repo.Read(currentTargetsFile(e))
	e.repo.AddTarget("targets", "fw/image.bin", []byte("firmware v2"), nil)
	e.repo.Publish()
	// The attacker serves the (validly signed, logged) targets v1 as v2.
	e.serveBytes("/metadata/"+currentTargetsFile(e), v1)
	if err := e.attack(); !errors.Is(err, &metadata.ErrLengthOrHashMismatch{}) && !errors.Is(err, update.ErrTooLarge) {
		t.Fatalf("got %v", err)
	}
}

func TestAttackFastForwardRecovery(t *testing.T) {
	e := start(t, 2)
	// A stolen timestamp key fast-forwards the timestamp version.
	e.repo.Timestamp.Signed.Version = 1000
	e.repo.WriteTimestamp()
	e.mustUpdate()
	// The legitimate timestamp now looks like a rollback: refused.
	e.repo.Timestamp.Signed.Version = 5
	e.repo.WriteTimestamp()
	if err := e.attack(); !errors.Is(err, &metadata.ErrBadVersionNumber{}) {
		t.Fatalf("got %v", err)
	}
	// Recovery (TUF §5.3.11): the root rotates the timestamp key; the
	// device drops the fast-forwarded timestamp and follows again.
	e.repo.RotateRoot("timestamp")
	e.repo.WriteTimestamp()
	e.repo.AddTarget("targets", "fw/image.bin", []byte("firmware v2"), nil)
	e.repo.Publish()
	if res := e.mustUpdate(); !res.Installed {
		t.Fatalf("did not recover: %+v", res)
	}
}

// withTargetsThreshold makes the targets role 2-of-2 (root v2).
func withTargetsThreshold(t *testing.T, e *env) {
	k := kit.NewKey()
	if err := e.repo.Root.Signed.AddKey(k.Pub, "targets"); err != nil {
		t.Fatal(err)
	}
	e.repo.Root.Signed.Roles["targets"].Threshold = 2
	e.repo.Root.Signed.Version++
	e.repo.WriteRoot()
	e.repo.Keys["targets"] = append(e.repo.Keys["targets"], k)
	e.repo.AddTarget("targets", "fw/image.bin", []byte("firmware v2"), nil)
	e.repo.Publish()
	e.mustUpdate()
}

func TestAttackKeyCompromiseBelowThreshold(t *testing.T) {
	e := start(t, 2)
	withTargetsThreshold(t, e)
	e.repo.Keys["targets"] = e.repo.Keys["targets"][:1] // one stolen key of two
	e.repo.AddTarget("targets", "fw/image.bin", []byte("malware"), nil)
	e.repo.Publish()
	if err := e.attack(); !errors.Is(err, &metadata.ErrUnsignedMetadata{}) {
		t.Fatalf("got %v", err)
	}
}

func TestAttackDuplicateSignatures(t *testing.T) {
	t.Run("same key id twice", func(t *testing.T) {
		e := start(t, 2)
		withTargetsThreshold(t, e)
		k := e.repo.Keys["targets"][0]
		e.repo.Keys["targets"] = []kit.Key{k, k} // the same key signs twice
		e.repo.AddTarget("targets", "fw/image.bin", []byte("malware"), nil)
		e.repo.Publish()
		if err := e.attack(); !strings.Contains(err.Error(), "multiple signatures") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("one key under two key ids", func(t *testing.T) {
		// A root that lists one public key twice (another scheme string
		// gives another key id) must not let that key meet a threshold of 2.
		e := start(t, 2)
		k := e.repo.Keys["targets"][0]
		twin := metadata.Key{Type: k.Pub.Type, Scheme: "ed25519-twin", Value: metadata.KeyVal{PublicKey: k.Pub.Value.PublicKey}}
		twinID, err := twin.ID()
		if err != nil {
			t.Fatal(err)
		}
		e.repo.Root.Signed.Keys[twinID] = &twin
		e.repo.Root.Signed.Roles["targets"].KeyIDs = append(e.repo.Root.Signed.Roles["targets"].KeyIDs, twinID)
		e.repo.Root.Signed.Roles["targets"].Threshold = 2
		e.repo.Root.Signed.Version++
		e.repo.WriteRoot()
		e.repo.AddTarget("targets", "fw/image.bin", []byte("malware"), nil)
		e.repo.Stage()
		// Sign with the key under both ids.
		md := e.repo.Roles["targets"]
		md.ClearSignatures()
		sig, err := md.Sign(k.Signer)
		if err != nil {
			t.Fatal(err)
		}
		md.Signatures = append(md.Signatures, metadata.Signature{KeyID: twinID, Signature: sig.Signature})
		b, _ := md.ToBytes(false)
		name := currentTargetsFile(e)
		e.repo.Write(name, b)
		e.repo.Write(name+".tlog-proof", e.repo.LogEntry("targets", md.Signed.Version, b))
		e.repo.Expose()
		if err := e.attack(); !errors.Is(err, &metadata.ErrUnsignedMetadata{}) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestAttackWrongSoftware(t *testing.T) {
	for name, body := range map[string]string{
		"hash":          "firmware v3", // same length, other bytes
		"short":         "firmware",
		"long":          "firmware v2 and more",
		"empty":         "",
		"one byte more": "firmware v2!",
	} {
		t.Run(name, func(t *testing.T) {
			e := start(t, 2)
			e.repo.AddTarget("targets", "fw/image.bin", []byte("firmware v2"), nil)
			e.repo.Publish()
			e.serveBytes("/targets/"+harness.TargetName("fw/image.bin", []byte("firmware v2")), []byte(body))
			if err := e.attack(); !errors.Is(err, update.ErrTargetMismatch) {
				t.Fatalf("got %v", err)
			}
		})
	}
}

// release publishes firmware v2 and returns the targets file name.
func release(e *env) string {
	e.repo.AddTarget("targets", "fw/image.bin", []byte("firmware v2"), nil)
	e.repo.Publish()
	return currentTargetsFile(e)
}

func TestAttackUnloggedRelease(t *testing.T) {
	e := start(t, 2)
	name := release(e)
	e.repo.Remove(name + ".tlog-proof")
	if err := e.attack(); !errors.Is(err, update.ErrUnlogged) {
		t.Fatalf("got %v", err)
	}
}

func TestAttackProofForOtherBytes(t *testing.T) {
	e := start(t, 2)
	old := currentTargetsFile(e)
	name := release(e)
	e.repo.Write(name+".tlog-proof", e.repo.Read(old+".tlog-proof"))
	if err := e.attack(); !errors.Is(err, update.ErrUnlogged) || !errors.Is(err, evidence.ErrNotIncluded) {
		t.Fatalf("got %v", err)
	}
}

func TestAttackProofForOtherRepositoryOrRole(t *testing.T) {
	for _, tc := range []struct{ repo, role string }{
		{"other.example/firmware", "targets"},
		{"", "apps"},
		{"", "root"},
	} {
		t.Run(tc.repo+tc.role, func(t *testing.T) {
			e := start(t, 2)
			name := release(e)
			b := e.repo.Read(name)
			id := e.repo.ID
			if tc.repo != "" {
				e.repo.ID = tc.repo
			}
			p := e.repo.LogEntry(tc.role, 2, b) // the same bytes, logged as something else
			e.repo.ID = id
			e.repo.Write(name+".tlog-proof", p)
			if err := e.attack(); !errors.Is(err, update.ErrUnlogged) {
				t.Fatalf("got %v", err)
			}
		})
	}
}

// reproof rewrites the proof of file name with a checkpoint made by mk.
func reproof(t *testing.T, e *env, name string, mk func(body []byte, signed []byte) []byte) {
	p, err := proof.Parse(e.repo.Read(name + ".tlog-proof"))
	if err != nil {
		t.Fatal(err)
	}
	n := strings.Index(string(p.Checkpoint), "\n\n")
	body := p.Checkpoint[:n+1]
	logSigned, err := checkpoint.Sign(mustParse(t, body), e.repo.Log.Signer)
	if err != nil {
		t.Fatal(err)
	}
	p.Checkpoint = mk(body, logSigned)
	e.repo.Write(name+".tlog-proof", p.Format())
}

func mustParse(t *testing.T, body []byte) checkpoint.Checkpoint {
	c, err := checkpoint.ParseUnverified(body)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func cosign(t *testing.T, body []byte, ws ...evidencetest.Witness) []byte {
	var out []byte
	for _, w := range ws {
		sig, err := checkpoint.Cosign(body, w.Signer)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, sig...)
	}
	return out
}

func TestAttackTooFewWitnesses(t *testing.T) {
	e := start(t, 2)
	name := release(e)
	ws := e.repo.Log.Witnesses
	unknown := evidencetest.NewLog("other.example", 2).Witnesses
	for label, cosigners := range map[string][]evidencetest.Witness{
		"one of two":         {ws[0]},
		"none":               nil,
		"unknown witnesses":  {ws[0], unknown[0], unknown[1]},
		"duplicate witness":  {ws[0], ws[0]},
		"same witness twice": {ws[1], ws[1]},
	} {
		t.Run(label, func(t *testing.T) {
			reproof(t, e, name, func(body, signed []byte) []byte {
				return checkpoint.AddSignatures(signed, cosign(t, body, cosigners...))
			})
			if err := e.attack(); !errors.Is(err, update.ErrUnlogged) {
				t.Fatalf("got %v", err)
			}
		})
	}
}

func TestAttackCheckpointNotSignedByLog(t *testing.T) {
	e := start(t, 2)
	name := release(e)
	ws := e.repo.Log.Witnesses
	other := evidencetest.NewLog(e.repo.Log.Origin, 0) // same origin, another key
	reproof(t, e, name, func(body, _ []byte) []byte {
		s, err := checkpoint.Sign(mustParse(t, body), other.Signer)
		if err != nil {
			t.Fatal(err)
		}
		return checkpoint.AddSignatures(s, cosign(t, body, ws[0], ws[1]))
	})
	if err := e.attack(); !errors.Is(err, update.ErrUnlogged) {
		t.Fatalf("got %v", err)
	}
}

// fork builds, with the log's (stolen) keys, a different history of the
// same origin of the given size holding the attacker's release, and writes
// its proof.
func fork(t *testing.T, e *env, name string, size uint64) *evidencetest.Log {
	forked := evidencetest.NewLogWithKey(e.repo.Log, e.repo.Log.Origin)
	for forked.Size() < size-1 {
		forked.Append([]byte(fmt.Sprintf("junk %d", forked.Size())))
	}
	b := e.repo.Read(name)
	i := forked.Append(entryBytes(t, e.repo.ID, "targets", e.repo.Roles["targets"].Signed.Version, b))
	e.repo.Write(name+".tlog-proof", forked.Proof(i, 0, 1))
	return forked
}

func TestAttackForkedCheckpoint(t *testing.T) {
	t.Run("same size offline", func(t *testing.T) {
		e := start(t, 2)
		held := heldSize(t, e)
		name := release(e)
		fork(t, e, name, held)
		err := e.attack()
		checkForkEvidence(t, e, err, true)
	})
	t.Run("larger online", func(t *testing.T) {
		e := start(t, 2)
		e.withLedger()
		name := release(e)
		fork(t, e, name, e.repo.Log.Size())
		err := e.attack()
		checkForkEvidence(t, e, err, false)
	})
	t.Run("beyond the ledger", func(t *testing.T) {
		e := start(t, 2)
		e.withLedger()
		name := release(e)
		fork(t, e, name, e.repo.Log.Size()+5)
		e.serve("/v1/proof", http.NotFound) // nor does the ledger know the entry
		if err := e.attack(); !errors.Is(err, update.ErrUnvouched) {
			t.Fatalf("got %v", err)
		}
	})
}

func checkForkEvidence(t *testing.T, e *env, err error, conclusive bool) {
	t.Helper()
	var fe *evidence.ForkError
	if !errors.As(err, &fe) {
		t.Fatalf("got %v, want a fork", err)
	}
	files, _ := filepath.Glob(filepath.Join(e.dir, "evidence", "fork-*.txt"))
	if len(files) != 1 {
		t.Fatalf("evidence files: %v", files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	got, err := device.VerifyEvidence(b, e.repo.PolicyText(2))
	if err != nil || got != conclusive {
		t.Fatalf("VerifyEvidence = %v, %v; want %v", got, err, conclusive)
	}
}

func TestAttackReplayedOlderCheckpoint(t *testing.T) {
	e := start(t, 2)
	// Release v2 is logged (its proof under checkpoint N) but not exposed;
	// a root rotation logged after it is exposed and the device follows it,
	// so the device now holds checkpoint N+1.
	e.repo.AddTarget("targets", "fw/image.bin", []byte("firmware v2"), nil)
	e.repo.Stage()
	e.repo.RotateRoot("timestamp")
	e.repo.WriteTimestamp()
	e.mustUpdate()
	// Then the release is exposed with its older checkpoint: offline, the
	// device cannot relate it to the newer one it holds, and refuses.
	e.repo.Expose()
	if err := e.attack(); !errors.Is(err, update.ErrStaleCheckpoint) {
		t.Fatalf("got %v", err)
	}
	// Online, the ledger gives a consistency proof: accepted.
	e.withLedger()
	if res := e.mustUpdate(); !res.Installed {
		t.Fatalf("online: %+v", res)
	}
}

// diamond makes targets delegate a/* to role a and b/* to role b, both of
// which delegate to one role "release" signed only by the key a gives it;
// b gives release a key that never signed it. Release lists a/app.bin
// (legitimate through a) and b/evil.bin (reachable only through b).
func diamond(e *env) {
	e.repo.Delegate("targets", "a", []string{"a/*"}, false)
	e.repo.Delegate("targets", "b", []string{"b/*"}, false)
	e.repo.Delegate("a", "release", []string{"a/*"}, false)
	e.repo.DelegateAlso("b", "release", []string{"b/*"})
	e.repo.AddTarget("release", "a/app.bin", []byte("app"), nil)
	e.repo.AddTarget("release", "b/evil.bin", []byte("evil"), nil)
	e.repo.Publish()
}

// TestDiamondDelegationSecondDelegatorKeysChecked: a role reached through
// two delegators must satisfy the keys of each. Resolving a/app.bin first
// trusts release through a; b/evil.bin, reached through b whose key never
// signed release, must not be installed on a's word.
func TestDiamondDelegationSecondDelegatorKeysChecked(t *testing.T) {
	e := start(t, 2)
	diamond(e)
	err := e.attack()
	if !strings.Contains(err.Error(), `role "release" reached through "b"`) {
		t.Errorf("got %v, want the second delegator named", err)
	}
	if e.installed("b/evil.bin") != "" {
		t.Error("target signed with a key b never authorised was installed")
	}
}
