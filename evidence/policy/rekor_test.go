package policy_test

import (
	"testing"

	"github.com/shiplog/shiplog/evidence/policy"
)

const (
	// Keys of Sigstore's logs, from testdata/sigstore (README there).
	rekorV1VKey = "rekor.sigstore.dev+c0d23d6a+AjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABNhtmPtrWm3U1eQXBogSMdGvXwBcK5AW5i0hrZLOC96l+smGNM7nwZ4QvFK/4sueRoVj//QP22Ni4Qt9DPfkWLc="
	rekorV2VKey = "log2025-alpha1.rekor.sigstage.dev+f30d5a99+AT5/gERB6AWme8IEtcwaqcZi0hp8ocV4+JRcUnVlQfKP"
)

func TestLogForRekorOrigins(t *testing.T) {
	p, err := policy.Parse([]byte("log " + rekorV1VKey + " https://rekor.sigstore.dev\nlog " + rekorV2VKey + "\nquorum none\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		origin string
		want   string // the log's key name, "" for none
	}{
		{"rekor.sigstore.dev - 2605736670972794746", "rekor.sigstore.dev"},
		{"rekor.sigstore.dev - 1193050959916656506", "rekor.sigstore.dev"}, // another shard of the same log
		{"rekor.sigstore.dev", "rekor.sigstore.dev"},
		{"log2025-alpha1.rekor.sigstage.dev", "log2025-alpha1.rekor.sigstage.dev"},
		// An Ed25519 log never takes the Rekor v1 form.
		{"log2025-alpha1.rekor.sigstage.dev - 1", ""},
		{"rekor.sigstore.dev - 02605736670972794746", ""}, // not canonical
		{"rekor.sigstore.dev - 0", ""},
		{"rekor.sigstore.dev - -5", ""},
		{"rekor.sigstore.dev - 99999999999999999999", ""}, // beyond int64
		{"rekor.sigstore.dev -  2605736670972794746", ""},
		{"rekor.sigstore.dev-2605736670972794746", ""},
		{"evil.example - 2605736670972794746", ""},
		{"rekor.sigstore.dev - 1 - 2", ""},
		{"", ""},
	} {
		l := p.LogFor(tc.origin)
		got := ""
		if l != nil {
			got = l.Origin
		}
		if got != tc.want {
			t.Errorf("LogFor(%q) = %q, want %q", tc.origin, got, tc.want)
		}
	}
}

func TestParseRekorV1Origin(t *testing.T) {
	host, id, ok := policy.ParseRekorV1Origin("rekor.sigstore.dev - 2605736670972794746")
	if !ok || host != "rekor.sigstore.dev" || id != 2605736670972794746 {
		t.Errorf("got %q %d %v", host, id, ok)
	}
}

func FuzzParseRekorV1Origin(f *testing.F) {
	f.Add("rekor.sigstore.dev - 2605736670972794746")
	f.Add("a - 1")
	f.Add(" - 1")
	f.Fuzz(func(t *testing.T, origin string) {
		host, id, ok := policy.ParseRekorV1Origin(origin)
		if ok && host+" - "+itoa(id) != origin {
			t.Errorf("ParseRekorV1Origin(%q) = %q, %d: not canonical", origin, host, id)
		}
	})
}

func itoa(n int64) string {
	var b []byte
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}
