package bundle_test

import (
	"bytes"
	"context"
	"fmt"

	"github.com/shiplog/shiplog/client/bundle"
	"github.com/shiplog/shiplog/client/update"
	"github.com/shiplog/shiplog/internal/harness"
)

// Verifying an offline update bundle as a device does, with no network: the
// TUF metadata from the device's trusted root, every role's tlog-proof under
// its tlog-policy, then every payload's length and hashes.
func ExampleBundle_Verify() {
	tb := &harness.Standalone{}
	defer tb.Close()
	r := harness.NewRawRepo(tb) // a vendor's repository, published with tlog-proofs
	r.AddTarget("targets", "fw/image.bin", []byte("firmware v1"), nil)
	r.Publish()
	file := r.Bundle("fw/image.bin") // what `shiplog bundle create` writes

	b, err := bundle.Open(bytes.NewReader(file), int64(len(file)))
	if err != nil {
		panic(err)
	}
	trusted := update.Trusted{Root: r.RootBytes(1)} // the device's trusted root
	v, err := b.Verify(context.Background(), trusted, bundle.Options{Policy: r.Policy(2), Repository: r.ID, Time: harness.Now})
	if err != nil {
		panic(err)
	}
	if err := v.VerifyPayloads(context.Background()); err != nil {
		panic(err)
	}
	for _, t := range v.Targets {
		fmt.Println("verified", t.Path)
	}

	// A bundle whose payload was altered is refused.
	bad := bytes.Clone(file)
	bad[len(bad)-1] ^= 1
	b, _ = bundle.Open(bytes.NewReader(bad), int64(len(bad)))
	v, err = b.Verify(context.Background(), trusted, bundle.Options{Policy: r.Policy(2), Repository: r.ID, Time: harness.Now})
	if err == nil {
		err = v.VerifyPayloads(context.Background())
	}
	fmt.Println("altered bundle refused:", err != nil)
	// Output:
	// verified fw/image.bin
	// altered bundle refused: true
}
