package device_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"

	"github.com/shiplog/shiplog/client/approval"
	"github.com/shiplog/shiplog/client/device"
	"github.com/shiplog/shiplog/internal/harness"
)

// An integrator's device agent: Init once (trusted root, repository, the
// tlog-policy releases must be proven under), then Open and Update whenever
// it checks for updates. Update installs only what TUF verifies and the
// transparency log proves, and commits the trusted state after the install.
func Example() {
	// A vendor's repository, published with tlog-proofs, served over HTTP
	// (in production: a static web server or CDN).
	tb := &harness.Standalone{}
	defer tb.Close()
	r := harness.NewRawRepo(tb)
	r.AddTarget("targets", "fw/image.bin", []byte("firmware v1"), nil)
	r.Publish()
	srv := httptest.NewServer(http.FileServer(http.Dir(r.Dir)))
	defer srv.Close()

	dir := filepath.Join(tb.TempDir(), "device")
	cfg := device.Config{Repository: r.ID, RepositoryURL: srv.URL, Approval: approval.Auto}
	if err := device.Init(dir, cfg, r.RootBytes(1), r.PolicyText(2)); err != nil {
		panic(err)
	}

	d, err := device.Open(dir, device.Options{Time: harness.Now})
	if err != nil {
		panic(err)
	}
	defer d.Close()
	res, err := d.Update(context.Background())
	if err != nil {
		panic(err) // nothing was installed or trusted
	}
	fmt.Println("installed:", res.Installed)

	// A second update finds nothing new.
	res, err = d.Update(context.Background())
	if err != nil {
		panic(err)
	}
	fmt.Println("installed again:", res.Installed)
	// Output:
	// installed: true
	// installed again: false
}
