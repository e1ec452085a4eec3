package log

import (
	"context"
	"errors"
	"net/http"

	"github.com/shiplog/shiplog/client/tufcheck"
	"github.com/shiplog/shiplog/evidence/signoff"
)

// Errors of the ledger that callers branch on. Every error Publish and
// Register return wraps one of these or one of client/tufcheck's sentinels
// (ErrMalformed, ErrWrongRole, ErrThreshold, ErrExpired, ErrVersion,
// ErrNoDelegation), every error of Attest one of these or
// signoff.ErrBadSignature; HTTPStatus maps them.
var (
	// ErrBadRequest means a malformed request: bad repository id or role
	// name, bad index or size.
	ErrBadRequest = errors.New("bad request")
	// ErrRoleRefused means a snapshot or timestamp submission: those roles
	// change every few minutes and commit to nothing a device installs on
	// their own, so the ledger does not log them.
	ErrRoleRefused = errors.New("role is not logged: only root, targets and delegated targets roles are")
	// ErrTooLarge means metadata larger than MaxMetadataSize.
	ErrTooLarge = errors.New("metadata too large")
	// ErrUnknownRepository means the repository was never registered.
	ErrUnknownRepository = errors.New("unknown repository")
	// ErrRepositoryExists means a registration for an existing repository
	// with another root.
	ErrRepositoryExists = errors.New("repository already registered with another root")
	// ErrUnavailable means the ledger is not ready or is shutting down, or
	// its storage failed; the caller may retry later.
	ErrUnavailable = errors.New("ledger unavailable")
	// ErrNotCovered means no cosigned checkpoint covers the entry yet (or
	// none did before the caller's deadline).
	ErrNotCovered = errors.New("no cosigned checkpoint covers the entry yet")
	// ErrNotFound (see storage.go) also means an unknown leaf, role or
	// metadata hash.
)

// HTTPStatus returns the HTTP status code for an error of Publish,
// Register or the proof calls (docs/spec/ledger-api.md), 500 for any other.
func HTTPStatus(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrBadRequest), errors.Is(err, ErrRoleRefused),
		errors.Is(err, tufcheck.ErrMalformed), errors.Is(err, tufcheck.ErrWrongRole):
		return http.StatusBadRequest
	case errors.Is(err, tufcheck.ErrThreshold), errors.Is(err, tufcheck.ErrNoDelegation), errors.Is(err, signoff.ErrBadSignature):
		return http.StatusForbidden
	case errors.Is(err, ErrUnknownRepository), errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, tufcheck.ErrVersion), errors.Is(err, ErrRepositoryExists):
		return http.StatusConflict
	case errors.Is(err, tufcheck.ErrExpired):
		return http.StatusGone
	case errors.Is(err, ErrUnavailable), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable
	case errors.Is(err, ErrNotCovered):
		return http.StatusGatewayTimeout
	default:
		return http.StatusInternalServerError
	}
}
