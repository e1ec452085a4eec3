// Package attest is what a rebuilder runs (docs/rebuilder.md): it fetches
// the source a target declares (docs/spec/provenance.md), rebuilds the
// target in a fresh temporary directory and compares the digest of what it
// built with the target's, the input of a "reproduced" or "mismatch"
// sign-off statement (docs/spec/signoff.md).
//
// Fetching: an https:// or file:/// archive is read into a temporary file
// (at most Limits.MaxArchive bytes), its SHA-256 is checked against the
// declared digest before anything is unpacked, and it is unpacked through
// an os.Root so that no entry lands outside the source directory (absolute
// names, ".." segments, links pointing out, device files and hard links are
// refused, at most Limits.MaxFiles entries and Limits.MaxUnpacked bytes).
// An archive whose entries all lie under one top-level directory is
// unpacked with that directory as the source root. A git source is cloned
// with the git command, checked out at the declared commit, and HEAD is
// checked to be exactly that commit; the build sees the tree without .git.
// A local copy (Source.Dir) replaces fetching; it is copied, never built in
// place.
//
// Building: build.command runs as `/bin/sh -c COMMAND` in the root of the
// copy, with a time limit (the whole process group is killed when it
// expires) and a minimal environment: PATH, HOME, TMPDIR and the Go and
// XDG caches inside the temporary directory, TZ=UTC, LC_ALL=C, plus the
// variables the rebuilder names. Nothing sandboxes the command beyond that:
// a rebuilder runs recipes of vendors it chose to check, as an unprivileged
// user (Rebuild refuses root unless AllowRoot).
//
// The package performs I/O (network, files, processes) and is linked only
// by the shiplog command, never by devices.
package attest
