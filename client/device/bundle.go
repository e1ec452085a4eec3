package device

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/shiplog/shiplog/client/approval"
	"github.com/shiplog/shiplog/client/bundle"
	"github.com/shiplog/shiplog/client/state"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// VerifyBundle opens the bundle at path and verifies it against the
// device's trusted state exactly as InstallBundle would, without
// installing: the metadata (through the update loop and the transparency
// gate) and every payload's bytes.
func (d *Device) VerifyBundle(ctx context.Context, path string) (*Result, error) {
	f, b, err := openBundle(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s, err := d.store.Load()
	if err != nil {
		return nil, err
	}
	v, p, err := d.planBundle(ctx, b, s)
	if err != nil {
		return nil, d.failed(err)
	}
	if err := v.VerifyPayloads(ctx); err != nil {
		return nil, err
	}
	return &Result{Summary: p.summary, Action: approval.Show, Message: "bundle verified"}, nil
}

// InstallBundle installs an offline update bundle: the same verification as
// an online update (the bundle is the remote of the same update loop), then
// the same staged install and commit. Payloads the bundle omits must be
// held by the device already, proven by hash as they are copied. An
// explicit install-bundle is approved unless the approval mode is never;
// in mode ask (or security, for a non-security bundle) the user is asked.
func (d *Device) InstallBundle(ctx context.Context, path string) (*Result, error) {
	if d.cfg.Approval == approval.Never {
		return nil, errors.New("approval mode is never: not installing updates")
	}
	f, b, err := openBundle(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s, err := d.store.Load()
	if err != nil {
		return nil, err
	}
	v, p, err := d.planBundle(ctx, b, s)
	if err != nil {
		return nil, d.failed(err)
	}
	if held, err := d.release(p); held != nil || err != nil {
		return held, err
	}
	action := approval.Decide(d.cfg.Approval, p.summary)
	if action == approval.Show {
		action = approval.Prompt // the user asked for this bundle; still confirm
	}
	fetch := func(ctx context.Context, t *metadata.TargetFiles, w io.Writer) error {
		if v.Omitted[t.Path] {
			return fmt.Errorf("%w: %s, and the device does not hold it", bundle.ErrOmitted, clean(t.Path))
		}
		return v.Session.Download(ctx, t, w)
	}
	return d.apply(ctx, s, v.Session, p, action, fetch)
}

func openBundle(path string) (*os.File, *bundle.Bundle, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	b, err := bundle.Open(f, fi.Size())
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, b, nil
}

// planBundle verifies b against the trusted state s and plans installing
// its payloads.
func (d *Device) planBundle(ctx context.Context, b *bundle.Bundle, s *state.State) (*bundle.Verified, *plan, error) {
	v, err := b.Verify(ctx, trustedOf(s), bundle.Options{Policy: d.policy, Repository: d.cfg.Repository, Time: d.opts.Time, Limits: d.opts.Limits})
	if err != nil {
		return nil, nil, err
	}
	targets := map[string]*metadata.TargetFiles{}
	for _, t := range v.Targets {
		if len(d.cfg.Targets) > 0 && !slices.Contains(d.cfg.Targets, t.Path) {
			return nil, nil, fmt.Errorf("bundle carries %s, which this device does not install", clean(t.Path))
		}
		targets[t.Path] = t
	}
	p, err := newPlan(d.cfg.Repository, v.Session, s, targets)
	if err != nil {
		return nil, nil, err
	}
	if err := d.signoff(ctx, v.Session, p, bundleSources(b)); err != nil {
		return nil, nil, err
	}
	return v, p, d.assess(p)
}

// PreparedBundle is a bundle verified against the device's trusted state
// (metadata and every payload's bytes), ready to apply. It holds the bundle
// file open until Close.
type PreparedBundle struct {
	d *Device
	f *os.File
	s *state.State
	v *bundle.Verified
	p *plan
}

// PrepareBundle verifies the bundle at path as InstallBundle does, payload
// bytes included, without installing anything.
func (d *Device) PrepareBundle(ctx context.Context, path string) (*PreparedBundle, error) {
	f, b, err := openBundle(path)
	if err != nil {
		return nil, err
	}
	s, err := d.store.Load()
	if err != nil {
		f.Close()
		return nil, err
	}
	v, p, err := d.planBundle(ctx, b, s)
	if err == nil {
		err = v.VerifyPayloads(ctx)
	}
	if err != nil {
		f.Close()
		return nil, d.failed(err)
	}
	return &PreparedBundle{d: d, f: f, s: s, v: v, p: p}, nil
}

// Summary describes what applying the bundle changes.
func (pb *PreparedBundle) Summary() *approval.Summary { return pb.p.summary }

// Apply installs the prepared bundle (the caller has approved it, gained
// capabilities included). It fails with state.ErrConflict if the trusted
// state changed since PrepareBundle, with ErrDenied if a target gains a
// capability the device denies, with ErrMismatch if a trusted rebuilder
// objected, and with ErrHeld while the release lacks sign-off or is
// inside the device's publicity window.
func (pb *PreparedBundle) Apply(ctx context.Context) (*Result, error) {
	held, err := pb.d.release(pb.p)
	if err != nil {
		return nil, err
	}
	if held != nil {
		return nil, fmt.Errorf("%w: %s", ErrHeld, held.Message)
	}
	fetch := func(ctx context.Context, t *metadata.TargetFiles, w io.Writer) error {
		if pb.v.Omitted[t.Path] {
			return fmt.Errorf("%w: %s, and the device does not hold it", bundle.ErrOmitted, clean(t.Path))
		}
		return pb.v.Session.Download(ctx, t, w)
	}
	return pb.d.apply(ctx, pb.s, pb.v.Session, pb.p, approval.Install, fetch)
}

// Close releases the bundle file.
func (pb *PreparedBundle) Close() error { return pb.f.Close() }
