package attest

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
)

// serveArchive serves body at /src/fw-1.0.0.tar.gz over TLS.
func serveArchive(t *testing.T, body []byte) *httptest.Server {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/src/fw-1.0.0.tar.gz" {
			http.NotFound(w, r)
			return
		}
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestRebuildReproducesFromHTTPS: a source archive declared at an https://
// URL is fetched, checked against its declared sha256 and rebuilt.
func TestRebuildReproducesFromHTTPS(t *testing.T) {
	src := firmware(t, "hello")
	want := vendorBuild(t, src)
	archive, sha := tarGz(t, src, "fw-1.0.0")
	b, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	srv := serveArchive(t, b)
	p := archiveProvenance(archive, sha)
	p.Source.URI = srv.URL + "/src/fw-1.0.0.tar.gz"
	req := request(t, p, want)
	req.HTTPClient = srv.Client()
	res, err := Rebuild(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != Reproduced || res.Built != want {
		t.Errorf("got %+v, want reproduced %x", res, want)
	}
}

// TestAttackHTTPSArchiveSwapped: the server answers other bytes than the
// archive the vendor declared; nothing is unpacked or built. A missing
// archive is an error too, never a build of nothing.
func TestAttackHTTPSArchiveSwapped(t *testing.T) {
	src := firmware(t, "hello")
	_, sha := tarGz(t, src, "fw-1.0.0")
	other, _ := tarGz(t, firmware(t, "hello, with a backdoor"), "fw-1.0.0")
	b, err := os.ReadFile(other)
	if err != nil {
		t.Fatal(err)
	}
	srv := serveArchive(t, b)
	marker := t.TempDir() + "/built"
	for name, uri := range map[string]string{"swapped": srv.URL + "/src/fw-1.0.0.tar.gz", "missing": srv.URL + "/src/gone.tar.gz"} {
		p := archiveProvenance(other, sha)
		p.Source.URI = uri
		p.Build.Command = "touch " + marker
		req := request(t, p, [32]byte{})
		req.HTTPClient = srv.Client()
		_, err := Rebuild(context.Background(), req)
		if err == nil || (name == "swapped" && !errors.Is(err, ErrDigest)) {
			t.Errorf("%s: got %v", name, err)
		}
		if _, serr := os.Stat(marker); serr == nil {
			t.Fatalf("%s: the build ran", name)
		}
	}
}
