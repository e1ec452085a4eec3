// Package service is the device's update service for bundles, the state
// machine of pw_software_update's BundledUpdate service:
//
//	inactive -Start-> transferring -SetTransferred-> transferred
//	  -Verify-> verifying -> verified -Apply-> applying -> finished
//
// with Abort (from transferring up to verified: finished, result aborted),
// Reset (finished -> inactive), progress (bytes transferred) and a result
// (success, failed, aborted) with the failure reason. A call that is not
// allowed in the current state returns ErrWrongState and changes nothing:
// the session survives a confused or hostile caller. Verification and
// installation are the device's own (client/device PrepareBundle and
// Apply), the same code as every other update.
//
// A Service is safe for concurrent use: Status and Abort may be called while
// Verify or Apply run; its mutex is never held across I/O.
package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/shiplog/shiplog/client/approval"
	"github.com/shiplog/shiplog/client/device"
)

// State is the service's state.
type State string

// The states.
const (
	Inactive     State = "inactive"
	Transferring State = "transferring"
	Transferred  State = "transferred"
	Verifying    State = "verifying"
	Verified     State = "verified"
	Applying     State = "applying"
	Finished     State = "finished"
)

// Result is how a finished session ended.
type Result string

// The results.
const (
	None    Result = ""
	Success Result = "success"
	Failed  Result = "failed"
	Aborted Result = "aborted"
)

// ErrWrongState means the call is not allowed in the current state.
var ErrWrongState = errors.New("update service: call not allowed in this state")

// Device is what the service needs of the device: client/device.Device.
type Device interface {
	PrepareBundle(ctx context.Context, path string) (*device.PreparedBundle, error)
}

// Status is a snapshot of the service.
type Status struct {
	State   State             `json:"state"`
	Result  Result            `json:"result,omitempty"`
	Error   string            `json:"error,omitempty"`
	Written int64             `json:"bytes_transferred"`
	Summary *approval.Summary `json:"summary,omitempty"`
	Version string            `json:"version,omitempty"`
}

// Service runs one bundle update at a time.
type Service struct {
	// Dir is where a transferred bundle is kept (DIR/bundle.transfer).
	Dir string
	// MaxSize bounds a transferred bundle; default 16 GiB.
	MaxSize int64
	Device  Device

	mu       sync.Mutex
	st       Status
	file     *os.File // while transferring
	path     string   // the bundle once transferred
	prepared *device.PreparedBundle
	cancel   context.CancelFunc
}

func (s *Service) transition(from []State, to State) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.State == "" {
		s.st.State = Inactive
	}
	for _, f := range from {
		if s.st.State == f {
			s.st.State = to
			return nil
		}
	}
	return fmt.Errorf("%w: %s -> %s", ErrWrongState, s.st.State, to)
}

// Status returns the current status.
func (s *Service) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	if st.State == "" {
		st.State = Inactive
	}
	return st
}

// Start begins a transfer: inactive -> transferring.
func (s *Service) Start() error {
	if err := s.transition([]State{Inactive}, Transferring); err != nil {
		return err
	}
	path := filepath.Join(s.Dir, "bundle.transfer")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.finishLocked(Failed, err)
		return err
	}
	s.file, s.path = f, path
	return nil
}

// StartWithFile takes a bundle already on local storage: inactive ->
// transferred.
func (s *Service) StartWithFile(path string) error {
	if err := s.transition([]State{Inactive}, Transferred); err != nil {
		return err
	}
	s.mu.Lock()
	s.path = path
	s.mu.Unlock()
	return nil
}

// Write appends transferred bytes (transferring only). Calls to Write must
// not overlap each other.
func (s *Service) Write(p []byte) (int, error) {
	s.mu.Lock()
	if s.st.State != Transferring {
		defer s.mu.Unlock()
		return 0, fmt.Errorf("%w: write in %s", ErrWrongState, s.st.State)
	}
	max := s.MaxSize
	if max <= 0 {
		max = 16 << 30
	}
	if s.st.Written+int64(len(p)) > max {
		defer s.mu.Unlock()
		err := fmt.Errorf("bundle larger than %d bytes", max)
		s.finishLocked(Failed, err)
		return 0, err
	}
	f := s.file
	s.mu.Unlock()
	n, err := f.Write(p)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Written += int64(n)
	if err != nil && s.st.State == Transferring {
		s.finishLocked(Failed, err)
	}
	return n, err
}

// Transfer copies r into the service (transferring only).
func (s *Service) Transfer(r io.Reader) (int64, error) { return io.Copy(writerOnly{s}, r) }

type writerOnly struct{ io.Writer }

// SetTransferred ends the transfer: transferring -> transferred.
func (s *Service) SetTransferred() error {
	if err := s.transition([]State{Transferring}, Transferred); err != nil {
		return err
	}
	s.mu.Lock()
	f := s.file
	s.file = nil
	s.mu.Unlock()
	err := f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		s.finish(Failed, err)
	}
	return err
}

// Verify verifies the transferred bundle against the device's trusted
// state: transferred -> verifying -> verified, or finished/failed.
func (s *Service) Verify(ctx context.Context) error {
	if err := s.transition([]State{Transferred}, Verifying); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	s.mu.Lock()
	s.cancel = cancel
	path := s.path
	s.mu.Unlock()
	p, err := s.Device.PrepareBundle(ctx, path)
	cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cancel = nil
	if s.st.State != Verifying { // aborted meanwhile
		if p != nil {
			p.Close()
		}
		return fmt.Errorf("update service: %s", s.st.Result)
	}
	if err != nil {
		s.finishLocked(Failed, err)
		return err
	}
	s.prepared = p
	s.st.State, s.st.Summary = Verified, p.Summary()
	return nil
}

// Apply installs the verified bundle: verified -> applying -> finished.
func (s *Service) Apply(ctx context.Context) error {
	if err := s.transition([]State{Verified}, Applying); err != nil {
		return err
	}
	s.mu.Lock()
	p := s.prepared
	s.mu.Unlock()
	res, err := p.Apply(ctx)
	p.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prepared = nil
	if err != nil {
		s.finishLocked(Failed, err)
		return err
	}
	s.st.Version = res.Version
	s.finishLocked(Success, nil)
	return nil
}

// Abort ends the session from transferring, transferred, verifying or
// verified: finished with result aborted. An install that has begun
// (applying) cannot be aborted.
func (s *Service) Abort() error {
	if err := s.transition([]State{Transferring, Transferred, Verifying, Verified}, Finished); err != nil {
		return err
	}
	s.finish(Aborted, nil)
	return nil
}

// Reset returns a finished session to inactive.
func (s *Service) Reset() error {
	if err := s.transition([]State{Finished}, Inactive); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st = Status{State: Inactive}
	return nil
}

func (s *Service) finish(r Result, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finishLocked(r, err)
}

// finishLocked ends the session; s.mu must be held.
func (s *Service) finishLocked(r Result, err error) {
	s.st.State, s.st.Result = Finished, r
	if err != nil {
		s.st.Error = err.Error()
	}
	if s.cancel != nil {
		s.cancel()
	}
	if s.file != nil {
		s.file.Close()
		s.file = nil
	}
	if s.prepared != nil {
		s.prepared.Close()
		s.prepared = nil
	}
	if s.path != "" && filepath.Dir(s.path) == s.Dir && filepath.Base(s.path) == "bundle.transfer" {
		os.Remove(s.path)
	}
	s.path = ""
}
